"""Stopping child processes: the services ``sealroom serve`` and the demo start."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    """SIGTERM each child still running; SIGKILL any still there ``grace`` seconds later.

    Returns once every child has exited (and been reaped).
    """
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
