"""Stopping service processes: a leader that died on its own still has its group signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealroom._process import has_exited, stop_processes

# A leader that starts one worker, as uvicorn --workers does, then waits.
_LEADER = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "time.sleep(120)"
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited; waiting for its new parent to reap it


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_dead_leaders_workers_are_stopped_with_its_group() -> None:
    leader = subprocess.Popen([sys.executable, "-c", _LEADER], process_group=0)
    try:
        children = Path(f"/proc/{leader.pid}/task/{leader.pid}/children")
        deadline = time.monotonic() + 30
        while not children.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.05)
        (worker,) = (int(c) for c in children.read_text().split())
        assert not has_exited(leader)

        os.kill(leader.pid, signal.SIGKILL)  # the leader dies on its own; its worker lives
        while not has_exited(leader):
            time.sleep(0.05)
        assert leader.returncode is None  # not reaped: the group id is still ours
        assert not _gone(worker)

        stop_processes([leader], grace=5.0, groups=True)
        assert leader.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(worker)
    finally:
        if leader.returncode is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()
