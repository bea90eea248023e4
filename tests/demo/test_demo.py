"""The meeting demo runs end to end, and every claim it prints holds.

Each claim is also asserted where it is built: removal and rekeys in
tests/meeting/test_meeting_integration.py, revoked devices and artifacts in
tests/keyservice/test_sdk_flows.py, the audit chain in tests/keyservice/test_audit.py,
SFrame integrity in tests/media/.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sealroom.demo.meeting import run_demo
from sealroom.demo.services import free_port, wait_until_up
from sealroom.idp import DevIdp


class _Tee(io.StringIO):
    """Keeps the demo's output and also prints it, so a failure shows how far it got."""

    def write(self, text: str) -> int:
        sys.stdout.write(text)
        return super().write(text)


def test_the_meeting_demo_keeps_every_claim(tmp_path: Path) -> None:
    out = _Tee()
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


@pytest.mark.parametrize(
    ("stop", "inherit_ignored_sigint"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigint", "sigterm", "sigint-inherited-ignored"],
)
def test_serve_runs_both_services_and_stops_both(
    tmp_path: Path, stop: signal.Signals, inherit_ignored_sigint: bool
) -> None:
    idp = DevIdp(tmp_path / "idp")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks))
    ports = free_port(), free_port()
    # A shell's background job starts with SIGINT ignored; `trap "" INT` reproduces that.
    ignoring = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"] if inherit_ignored_sigint else []
    proc = subprocess.Popen(
        [
            *ignoring,
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
            str(ports[0]),
            "--conference-port",
            str(ports[1]),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for port in ports:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0
        for port in ports:  # both children are gone, not orphaned
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
