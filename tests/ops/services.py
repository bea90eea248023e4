"""Running ``sealroom`` commands as processes for the operations tests: a development IdP
served from a thread, free ports, and waiting for a URL to answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sealroom.demo.services import free_port


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SEALROOM_* or PROMETHEUS_* variable, plus
    ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEALROOM_", "PROMETHEUS_MULTIPROC"))
    }
    env.update(extra)
    return env


def sealroom(
    *argv: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command that is expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "sealroom", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(*argv: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sealroom", *argv], env=env, cwd=cwd, stdout=out, stderr=out
        )


def wait_for(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> httpx.Response:
    """The first answer of ``url`` (any status); fails if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the command exited with {proc.returncode} before {url} answered")
        try:
            return httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def ports(n: int) -> list[int]:
    out: set[int] = set()
    while len(out) < n:
        out.add(free_port())
    return sorted(out)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for c in children:
                if int(c) not in found:
                    found.add(int(c))
                    frontier.append(int(c))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
