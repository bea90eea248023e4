"""Stopping child processes: the services ``sealroom serve`` and the demo start."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable


def has_exited(p: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it (so its process group id stays
    reserved until :func:`stop_processes` has signalled the group)."""
    if p.returncode is not None:
        return True
    info = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_pid == p.pid


def stop_processes(
    procs: Iterable[subprocess.Popen[bytes]], grace: float = 15.0, *, groups: bool = False
) -> None:
    """SIGTERM each child still running; SIGKILL any still there ``grace`` seconds later.

    With ``groups``, each child leads its own process group and the whole group is
    signalled (uvicorn's worker processes too); a child is signalled only while unreaped,
    so its pid cannot name someone else's group. Returns once every child is reaped.
    """

    def signal_one(p: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if groups:
                os.killpg(p.pid, sig)
            else:
                p.send_signal(sig)

    # Not poll(): it would reap a leader that died on its own and free its group id, and
    # that group may still hold its workers. An unreaped leader keeps the id ours.
    running = [p for p in procs if p.returncode is None]
    for p in running:
        signal_one(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_one(p, signal.SIGKILL)
            p.wait()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux), so
    that a supervisor killed with SIGKILL, which can stop nothing, leaves no child behind.
    If ``parent`` has already died (this process was re-parented), exit at once. A no-op
    where ``prctl`` is missing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
