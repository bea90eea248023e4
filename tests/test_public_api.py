"""The public surface is a reviewed list: __all__ names exactly the public names."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = [
    "sealroom.errors",
    "sealroom.crypto.pairing",
    "sealroom.crypto.pre",
    "sealroom.crypto.signing",
    "sealroom.crypto.envelope",
    "sealroom.crypto.escrow",
    "sealroom.crypto.stream",
    "sealroom.api.encoding",
    "sealroom.api.reqsig",
    "sealroom.api.identity",
    "sealroom.api.origins",
    "sealroom.keyservice.storage",
    "sealroom.keyservice.errors",
    "sealroom.keyservice.audit",
    "sealroom.keyservice.app",
    "sealroom.keyservice.cors",
    "sealroom.sdk",
    "sealroom.sdk.authorship",
    "sealroom.sdk.client",
    "sealroom.sdk.meeting",
    "sealroom.media.sframe",
    "sealroom.media.keys",
    "sealroom.media.payload",
    "sealroom.meeting.messages",
    "sealroom.meeting.session",
    "sealroom.conference.app",
    "sealroom.conference.bus",
    "sealroom.conference.handshake",
    "sealroom.conference.board",
    "sealroom.conference.quota",
    "sealroom.conference.asyncapi",
    "sealroom.keyservice.models",
    "sealroom.keyservice.settings",
    "sealroom.config",
    "sealroom.ops.logs",
    "sealroom.ops.metrics",
    "sealroom.ops.limits",
    "sealroom.ops.http",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_matches_public_definitions(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    }
    assert defined <= set(module.__all__), defined - set(module.__all__)
    for n in module.__all__:
        assert hasattr(module, n), n


def test_only_the_pairing_module_imports_the_backend() -> None:
    from pathlib import Path

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
