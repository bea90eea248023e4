"""The meeting demo runs end to end, and every claim it prints holds.

Each claim is also asserted where it is built: removal and rekeys in
tests/meeting/test_meeting_integration.py, revoked devices and artifacts in
tests/keyservice/test_sdk_flows.py, the audit chain in tests/keyservice/test_audit.py,
SFrame integrity in tests/media/.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
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


@pytest.mark.timeout(900)  # each step may wait 60 s on a loaded machine; let it report
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


@pytest.mark.timeout(600)
def test_the_demo_with_a_browser_participant_keeps_every_claim(tmp_path: Path) -> None:
    """``sealroom demo --browser``: the web client's page in headless Chromium is one more
    attendee, and its claims hold with the others'."""
    from sealroom.demo.web_attendee import why_not
    from tests.web.node import node_or_skip

    reason = why_not()
    if reason is not None and "make web" not in reason:
        pytest.skip(reason)
    node_or_skip()  # installs web/'s pinned packages, which the page loads
    out = _Tee()
    picture = tmp_path / "demo-timeline.png"
    result = run_demo(out, participants=3, picture=picture, browser=True)
    text = out.getvalue()
    assert result.ok, text
    browser_claims = [c for c, _ in result.claims if c.startswith("ivy's browser")]
    assert len(browser_claims) >= 4, browser_claims
    assert any("decoded" in c and "ivy's browser video" in c for c, _ in result.claims)
    assert result.screenshot == tmp_path / "demo-browser.png"
    assert result.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ivy (browser)" in result.table
    assert "browser participant's page" in text


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# Start `serve` with SIGINT at a given disposition, as a terminal (default) or a shell's
# background job (ignored) would, and SIGHUP at its default, whatever the dispositions of
# the process running the tests (CI may run under nohup, or in the background).
_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def _serve_args(tmp_path: Path, ports: tuple[int, int]) -> list[str]:
    """`python -m sealroom serve` on SQLite in tmp_path, trusting a fresh development IdP."""
    idp = DevIdp(tmp_path / "idp")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks))
    return [
        *("-m", "sealroom", "serve", "--jwks-file", str(jwks)),
        *("--database-url", f"sqlite:///{tmp_path / 'ks.db'}"),
        *("--secrets-file", str(tmp_path / "s.json")),
        *("--keyservice-port", str(ports[0]), "--conference-port", str(ports[1])),
    ]


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """After a failure: SIGKILL `serve` and the services (each in its own group)."""
    if proc.poll() is not None:
        return
    for child in _children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
    proc.kill()
    proc.wait()


@pytest.mark.parametrize(
    ("stop", "sigint"),
    [
        (signal.SIGINT, "SIG_DFL"),
        (signal.SIGTERM, "SIG_DFL"),
        (signal.SIGHUP, "SIG_DFL"),
        (signal.SIGTERM, "SIG_IGN"),
    ],
    ids=["sigint", "sigterm", "sighup", "sigterm-in-a-background-job"],
)
def test_serve_runs_both_services_and_stops_both(
    tmp_path: Path, stop: signal.Signals, sigint: str
) -> None:
    ports = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WITH_SIGINT,
            sigint,
            *_serve_args(tmp_path, ports),
        ],
        stdout=subprocess.DEVNULL,
        process_group=0,  # signals go to its whole group, as a terminal's Ctrl-C does
    )
    try:
        for port in ports:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        if sigint == "SIG_IGN":  # a background job keeps ignoring Ctrl-C, children included
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(1.0)
            assert proc.poll() is None
            for port in ports:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        os.killpg(proc.pid, stop)
        assert proc.wait(timeout=60) == 0
        for port in ports:  # both children are gone, not orphaned
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        _kill_tree(proc)


def test_serve_stops_both_when_one_service_dies(tmp_path: Path) -> None:
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux /proc to find the service processes")
    ports = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            *_serve_args(tmp_path, ports),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for port in ports:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        conference = [
            c
            for c in _children(proc.pid)
            if b"conference" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert len(conference) == 1
        os.kill(conference[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1
        assert "the conferencing service exited (status -9)" in err.decode()
        with pytest.raises(httpx.HTTPError):  # the key service, up before, was stopped too
            httpx.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=2)
    finally:
        _kill_tree(proc)
