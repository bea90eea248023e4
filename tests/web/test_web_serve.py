"""`sealroom serve` hands out the web client from the key service's origin: that page needs
no CORS, the channel admits it, and a page from any other origin is refused by both."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from sealroom.cli import default_web_root
from sealroom.conference.handshake import BEARER_PROTOCOL_PREFIX, SUBPROTOCOL
from sealroom.demo.services import free_port, wait_until_up
from sealroom.idp import DevIdp
from tests.web.node import WEB

pytestmark = pytest.mark.timeout(180)
EVIL = "https://evil.example"


async def _channel(url: str, origin: str, token: str) -> int:
    """The HTTP status of a channel handshake from a page of ``origin`` (101: opened)."""
    protocols = [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + token]
    try:
        ws = await websockets.connect(url, origin=origin, subprotocols=protocols)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def test_serve_hands_out_the_web_client_and_refuses_other_origins(tmp_path: Path) -> None:
    assert default_web_root() == WEB
    idp = DevIdp(tmp_path / "idp")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks))
    ks, conf = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sealroom", "serve", "--jwks-file", str(jwks)),
            *("--database-url", f"sqlite:///{tmp_path / 'ks.db'}"),
            *("--secrets-file", str(tmp_path / "s.json")),
            *("--keyservice-port", str(ks), "--conference-port", str(conf)),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for port in (ks, conf):
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        page = f"http://127.0.0.1:{ks}"
        r = httpx.get(f"{page}/web/", timeout=10)
        assert r.status_code == 200
        assert "Sealroom web core" in r.text
        js = httpx.get(f"{page}/web/src/crypto/pairing.js", timeout=10)
        assert js.status_code == 200
        assert "javascript" in js.headers["content-type"]
        if (WEB / "node_modules" / "mcl-wasm").is_dir():
            assert httpx.get(
                f"{page}/web/node_modules/mcl-wasm/browser/mcl.js", timeout=10
            ).is_success
        # The key service: its own page needs no CORS; another origin is refused.
        own = httpx.get(f"{page}/v1/service", headers={"origin": page}, timeout=10)
        assert own.status_code == 200
        evil = httpx.get(f"{page}/v1/service", headers={"origin": EVIL}, timeout=10)
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers
        # The channel: the served page is admitted (both loopback spellings), others not.
        url = f"ws://127.0.0.1:{conf}/v1/meetings/m1/channel"
        token = idp.issue("alice", "sealroom-conference")
        assert asyncio.run(_channel(url, page, token)) == 101
        assert asyncio.run(_channel(url, f"http://localhost:{ks}", token)) == 101
        assert asyncio.run(_channel(url, EVIL, token)) == 403
        assert asyncio.run(_channel(url, f"http://127.0.0.1:{conf + 1}", token)) == 403
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
