"""The public surface is a reviewed list: __all__ names exactly the public names."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest


def _modules_with_all() -> list[str]:
    """Every module of the package that declares ``__all__`` (found, not listed by hand)."""
    import sealroom

    root = Path(sealroom.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__main__.py" or not re.search(r"^__all__", path.read_text(), re.M):
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_all()


def test_the_modules_are_found() -> None:
    assert {"sealroom.sdk", "sealroom.sdk.events", "sealroom.meeting.session"} <= set(MODULES)
    assert len(MODULES) >= 40


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exactly_the_public_classes_and_functions(name: str) -> None:
    """``__all__`` holds every public class and function the module defines, no class or
    function it does not define or import on purpose, and nothing that does not exist."""
    module = importlib.import_module(name)
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    }
    listed = set(module.__all__)
    assert len(listed) == len(module.__all__), "a name is listed twice"
    assert defined <= listed, defined - listed
    for n in module.__all__:
        assert hasattr(module, n), n


def test_the_sdk_package_exports_exactly_its_public_names() -> None:
    """As httpx checks its own: every public name bound in ``sealroom.sdk`` (its submodules
    aside) is in ``__all__``, and the other way round."""
    import sealroom.sdk

    public = {
        n
        for n, obj in vars(sealroom.sdk).items()
        if not n.startswith("_") and not inspect.ismodule(obj)
    }
    assert public == set(sealroom.sdk.__all__)


def test_only_the_pairing_module_imports_the_backend() -> None:
    import sealroom

    root = Path(sealroom.__file__).parent
    users = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "import pymcl" in p.read_text() or "from pymcl" in p.read_text()
    ]
    assert users == ["crypto/pairing.py"]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("crypto", ("sealroom.keyservice", "sealroom.sdk", "sealroom.api", "sealroom.cli")),
        ("api", ("sealroom.keyservice", "sealroom.sdk", "sealroom.cli")),
        ("sdk", ("sealroom.keyservice", "sealroom.cli")),
        ("keyservice", ("sealroom.sdk", "sealroom.cli", "sealroom.conference")),
        ("media", ("sealroom.keyservice", "sealroom.sdk", "sealroom.meeting", "sealroom.cli")),
        ("meeting", ("sealroom.keyservice", "sealroom.sdk", "sealroom.conference", "sealroom.cli")),
        ("conference", ("sealroom.sdk", "sealroom.cli")),
        (
            "ops",
            ("sealroom.keyservice", "sealroom.conference", "sealroom.sdk", "sealroom.cli"),
        ),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    from pathlib import Path

    import sealroom

    root = Path(sealroom.__file__).parent / package
    for path in root.rglob("*.py"):
        text = path.read_text()
        for name in forbidden:
            assert f"from {name}" not in text, (path, name)
            assert f"import {name}" not in text, (path, name)


def test_the_settings_table_imports_no_service() -> None:
    from pathlib import Path

    import sealroom

    text = (Path(sealroom.__file__).parent / "config.py").read_text()
    for name in ("keyservice", "conference", "sdk", "cli", "ops"):
        assert f"sealroom.{name}" not in text


def test_every_public_error_derives_from_sealroom_error() -> None:
    """One error tree: each exception class a module of the package defines (private ones
    and warnings aside) is a SealroomError, so ``except SealroomError`` catches them all."""
    from sealroom.errors import SealroomError

    checked = 0
    for name in MODULES:
        module = importlib.import_module(name)
        for n, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and not issubclass(obj, Warning)
                and not n.startswith("_")
                and obj.__module__ == name
            ):
                assert issubclass(obj, SealroomError), f"{name}.{n}"
                checked += 1
    assert checked >= 20


def _top_level_public_names(name: str) -> set[str]:
    """Names a module binds at top level itself (definitions and assignments, not imports),
    without a leading underscore."""
    import ast

    module = importlib.import_module(name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and n != "__all__"}


@pytest.mark.parametrize("name", MODULES)
def test_all_is_exactly_the_public_names(name: str) -> None:
    """``__all__`` equals every public name the module binds itself: classes, functions,
    constants and type aliases (loggers and type variables are not API)."""
    import logging
    import typing

    module = importlib.import_module(name)
    public = {
        n
        for n in _top_level_public_names(name)
        if not isinstance(getattr(module, n), logging.Logger | typing.TypeVar)
    }
    reexported = set(module.__all__) - public
    assert public <= set(module.__all__), public - set(module.__all__)
    for n in reexported:  # what it lists without binding it itself, it imports on purpose
        assert getattr(module, n) is not None, n
