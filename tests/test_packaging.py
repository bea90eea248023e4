"""Packaging: the library and the services install lean (the demo's media and plotting
packages are the ``demo`` extra), the wheel carries its licence in the current form, and it
installs in a clean virtual environment and runs ``sealroom --help``."""

from __future__ import annotations

import ast
import email
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DEMO_ONLY = {"av", "numpy", "matplotlib"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_demo_and_bench_import_the_demo_packages() -> None:
    offenders = []
    for folder in (ROOT / "src" / "sealroom", ROOT / "tests"):
        for path in folder.rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            # The demo, and the tests that play real media through it (the browser's).
            if rel.startswith(("src/sealroom/demo/", "tests/demo/", "tests/web/test_browser_")):
                continue
            if _imports(path) & DEMO_ONLY:
                offenders.append(rel)
    assert offenders == []


@pytest.mark.timeout(900)
def test_the_wheel_installs_in_a_clean_venv_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("sealroom-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta.get_all("Project-URL")
    for req in meta.get_all("Requires-Dist") or []:
        name = req.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower()
        if name in DEMO_ONLY:
            assert 'extra == "demo"' in req, req

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if install.returncode != 0 and "No matching distribution" in install.stderr + install.stdout:
        pytest.skip(f"the package index is not reachable: {install.stderr.strip()[-200:]}")
    assert install.returncode == 0, install.stderr
    helped = subprocess.run(
        [str(env_dir / "bin" / "sealroom"), "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0, helped.stderr
    for command in ("serve", "keyservice", "conference", "idp", "demo"):
        assert command in helped.stdout
    probe = (
        "import importlib.util, sealroom.cli, sealroom.keyservice.app, sealroom.conference.app, "
        "sealroom.sdk, sealroom.sdk.meeting; "
        f"print(sorted(m for m in {sorted(DEMO_ONLY)!r} if importlib.util.find_spec(m)))"
    )
    lean = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=False)
    assert lean.returncode == 0, lean.stderr
    assert lean.stdout.strip() == "[]"  # the core install pulled in none of them
    demo = subprocess.run(
        [str(env_dir / "bin" / "sealroom"), "demo"], capture_output=True, text=True, check=False
    )
    assert demo.returncode == 2
    assert "sealroom[demo]" in demo.stderr
    assert "Traceback" not in demo.stderr
