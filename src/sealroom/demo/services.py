"""Start the development IdP, the key service and the conferencing service on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sealroom._process import stop_processes
from sealroom.api.encoding import b64d
from sealroom.idp import PROVIDER_AUDIENCE

__all__ = ["Services", "free_port", "wait_until_up"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"a service exited with code {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


class Services:
    """The three servers as child processes, each on a free port of 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        *,
        workers: int = 1,
        quiet: bool = True,
        web_root: Path | None = None,
        keyservice_args: tuple[str, ...] = (),
    ) -> None:
        """With ``web_root``, the key service hands out the web client under /web/, and
        pages from its origin may ask the IdP for tokens and open the channel.
        ``keyservice_args``: more flags for the key service (a benchmark raises its
        per-user rate limit and its transform queue, say)."""
        self.dir = data_dir
        ports = {n: free_port() for n in ("idp", "ks", "conf")}
        self.idp, self.ks, self.conf = (
            f"http://127.0.0.1:{ports[n]}" for n in ("idp", "ks", "conf")
        )
        page = ["--cors-origin", self.ks] if web_root else []
        served = ["--web-root", str(web_root)] if web_root else []
        allowed = ["--allowed-origin", self.ks] if web_root else []
        jwks = f"{self.idp}/.well-known/jwks.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALROOM_")}
        cmd = [sys.executable, "-m", "sealroom"]
        db = database_url or f"sqlite:///{data_dir / 'keyservice.db'}"
        self.database_url, self.secrets = db, data_dir / "keyservice-secrets.json"
        sink = subprocess.DEVNULL if quiet else None
        commands = [
            [*cmd, "idp", "--data-dir", str(data_dir / "idp"), "--port", str(ports["idp"]), *page],
            [
                *cmd,
                "keyservice",
                "--database-url",
                db,
                "--secrets-file",
                str(self.secrets),
                "--jwks-url",
                jwks,
                "--port",
                str(ports["ks"]),
                "--workers",
                str(workers),
                *served,
                *keyservice_args,
            ],
            [*cmd, "conference", "--jwks-url", jwks, "--port", str(ports["conf"]), *allowed],
        ]
        self._procs: list[subprocess.Popen[bytes]] = [
            subprocess.Popen(c, env=env, stdout=sink, stderr=sink) for c in commands
        ]
        try:
            for url, proc in (
                (jwks, self._procs[0]),
                (f"{self.ks}/healthz", self._procs[1]),
                (f"{self.conf}/healthz", self._procs[2]),
            ):
                wait_until_up(url, proc)
        except BaseException:
            self.stop()
            raise

    def token(self, user: str, audience: str) -> str:
        r = httpx.post(f"{self.idp}/v1/token", json={"user_id": user, "audience": audience})
        r.raise_for_status()
        return str(r.json()["token"])

    def provider_half(self, user: str) -> bytes:
        r = httpx.post(
            f"{self.idp}/v1/escrow-half",
            headers={"authorization": "Bearer " + self.token(user, PROVIDER_AUDIENCE)},
        )
        r.raise_for_status()
        return b64d(r.json()["half"])

    def stop(self) -> None:
        stop_processes(self._procs, grace=10.0)
