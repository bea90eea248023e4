"""The meeting demo runs end to end, and every claim it prints holds.

Each claim is also asserted where it is built: removal and rekeys in
tests/meeting/test_meeting_integration.py, revoked devices and artifacts in
tests/keyservice/test_sdk_flows.py, the audit chain in tests/keyservice/test_audit.py,
SFrame integrity in tests/media/.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sealroom.demo.meeting import run_demo
from sealroom.demo.services import free_port
from sealroom.idp import DevIdp


def test_the_meeting_demo_keeps_every_claim(tmp_path: Path) -> None:
    out = io.StringIO()
    picture = tmp_path / "timeline.png"
    result = run_demo(out, participants=5, picture=picture)
    text = out.getvalue()
    assert result.ok, text
    assert len(result.claims) >= 14
    assert all(held for _, held in result.claims)
    for must in (
        "removes dina",
        "REFUSED",
        "decrypted",
        "security claims held",
        "audit log verifies",
        "new tablet reads",
    ):
        assert must in text, must
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The removed participant's row shows refusals after its removal.
    assert any(cell.startswith("REFUSED") for cell in result.table["dina"].values())
    assert result.seconds < 120


def test_serve_runs_both_services(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path / "idp")
    jwks = tmp_path / "jwks.json"
    import json

    jwks.write_text(json.dumps(idp.jwks))
    ks_port, conf_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealroom",
            "serve",
            "--jwks-file",
            str(jwks),
            "--database-url",
            f"sqlite:///{tmp_path / 'ks.db'}",
            "--secrets-file",
            str(tmp_path / "s.json"),
            "--keyservice-port",
            str(ks_port),
            "--conference-port",
            str(conf_port),
        ],
        stdout=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        up = set()
        while time.monotonic() < deadline and len(up) < 2:
            for port in (ks_port, conf_port):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        up.add(port)
                except httpx.HTTPError:
                    time.sleep(0.1)
        assert up == {ks_port, conf_port}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
