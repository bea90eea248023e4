"""Brokers of a test's own, on free ports of 127.0.0.1, for the tests that stop and restart
a broker (never the shared ones on 6379 and 4222). Skipped, saying why, when the server
binary is missing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sealroom.demo.services import free_port

REDIS_SERVER = shutil.which("redis-server")
NATS_SERVER = shutil.which("nats-server")


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class OwnBroker:
    """One redis-server or nats-server (JetStream) that the test may stop and start again,
    on the same port and data folder."""

    def __init__(self, kind: str, folder: Path, *, persistent: bool = True) -> None:
        binary = REDIS_SERVER if kind == "redis" else NATS_SERVER
        if binary is None:
            pytest.skip(f"needs the {kind}-server binary")
        self.kind, self.binary, self.folder, self.persistent = kind, binary, folder, persistent
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.kind == "redis":
            persistence = (
                ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
                if self.persistent
                else ["--appendonly", "no", "--save", ""]
            )
            return [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                *persistence,
            ]
        return [
            self.binary,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.folder),
        ]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not _reachable(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}-server did not start")
            time.sleep(0.05)

    def stop(self, *, hard: bool = False) -> None:
        """SIGTERM (Redis writes what its persistence keeps), or SIGKILL with ``hard``."""
        if self.proc is None:
            return
        if hard:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(30)
        self.proc = None

    def __enter__(self) -> OwnBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
