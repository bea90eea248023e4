"""Running the web core's node tests from pytest: find node, install the pinned packages
from the committed lock file (``npm ci``), run ``node --test`` and read its summary."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

WEB = Path(__file__).parents[2] / "web"
MIN_NODE = 20
_STAMP = WEB / "node_modules" / ".sealroom-lock-sha256"


def node_or_skip() -> str:
    """The node executable, with web/node_modules installed from the lock file; or a skip
    that says why the JavaScript half of the suite cannot run here."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            f"node is not installed: the web core's tests need Node.js {MIN_NODE}+ "
            "(.ci/run installs it)"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(re.match(r"v(\d+)", version.strip()).group(1))  # type: ignore[union-attr]
    if major < MIN_NODE:
        pytest.skip(f"node {version.strip()} is too old: the web core needs Node.js {MIN_NODE}+")
    _npm_ci()
    return node


def _npm_ci() -> None:
    """``npm ci`` in web/, once per lock file (a stamp in node_modules remembers it)."""
    digest = hashlib.sha256((WEB / "package-lock.json").read_bytes()).hexdigest()
    if _STAMP.exists() and _STAMP.read_text() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: it installs the web core's pinned packages")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in web/:\n{done.stdout}\n{done.stderr}")
    _STAMP.write_text(digest)


@dataclass(frozen=True)
class NodeRun:
    returncode: int
    output: str
    passed: int
    failed: int
    skipped: int


def run_node(
    node: str, args: list[str], env: dict[str, str] | None = None, timeout: float = 600
) -> NodeRun:
    """``node args`` in web/, with extra environment variables; TAP counts when a test run."""
    done = subprocess.run(
        [node, *args],
        cwd=WEB,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr

    def count(name: str) -> int:
        found = re.findall(rf"^# {name} (\d+)$", done.stdout, flags=re.MULTILINE)
        return int(found[-1]) if found else 0

    return NodeRun(done.returncode, output, count("pass"), count("fail"), count("skipped"))
