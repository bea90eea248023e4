"""``/metrics`` with several worker processes: whichever worker answers the scrape, it
counts every worker's requests (PROMETHEUS_MULTIPROC_DIR, made fresh by the command)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import httpx

from sealroom.idp import DevIdp
from tests.ops.services import clean_env, ports, start, wait_for


def _served(text: str, route: str) -> float:
    total = 0.0
    pattern = re.compile(
        r'^sealroom_http_requests_total\{method="GET",route="' + re.escape(route) + r'",'
        r'service="keyservice",status="200"\} ([0-9.e+]+)$',
        re.MULTILINE,
    )
    for value in pattern.findall(text):
        total += float(value)
    return total


def test_metrics_add_up_across_workers(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path / "idp")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks))
    (port,) = ports(1)
    env = clean_env(SEALROOM_JWKS_FILE=str(jwks), SEALROOM_LOG_LEVEL="warning")
    proc = start(
        "keyservice",
        "--port",
        str(port),
        "--workers",
        "2",
        "--database-url",
        f"sqlite:///{tmp_path / 'ks.db'}",
        "--secrets-file",
        str(tmp_path / "s.json"),
        env=env,
        cwd=tmp_path,
        log=tmp_path / "log",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/readyz", proc)
        for _ in range(60):  # a new connection each: the kernel spreads them over workers
            with httpx.Client() as c:
                c.get(f"{base}/v1/service")
        deadline = time.monotonic() + 10  # a request is counted just after its answer
        while _served(httpx.get(f"{base}/metrics").text, "/v1/service") < 60:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(10):  # whichever worker answers, it sees all 60
            with httpx.Client() as c:
                text = c.get(f"{base}/metrics").text
            assert _served(text, "/v1/service") == 60
        assert "sealroom_transform_queue" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
