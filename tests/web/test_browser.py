"""In a real browser (Debian's chromium, driven by Playwright): the web core's self-check
page passes, and a page from an origin that is not listed can neither read the key service
nor open the meeting channel, while a listed page can do both."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.idp import DevIdp
from sealroom.keyservice.app import create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from tests.live_server import live_server
from tests.web.node import WEB, node_or_skip

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.timeout(180)

# A page that tries what a hostile (or friendly) page would: read the key service, send it
# a request with the device-signature headers (a CORS preflight), open the channel with a
# valid token. It writes what it could do into the page.
PROBE = """<!doctype html><title>probe</title><script type="module">
const q = new URLSearchParams(location.search);
const out = {};
try { out.get = (await fetch(q.get('ks') + '/v1/service')).status; } catch { out.get = 'blocked'; }
try {
  const r = await fetch(q.get('ks') + '/v1/users/keys', {
    method: 'POST', body: '{"user_ids": []}',
    headers: {'content-type': 'application/json', 'sealroom-device': 'dev-x',
              'sealroom-timestamp': '1', 'sealroom-nonce': 'AAAAAAAAAAAAAAAAAAAAAA',
              'sealroom-signature': 'AA'}});
  out.post = r.status;
} catch { out.post = 'blocked'; }
out.channel = await new Promise((resolve) => {
  const ws = new WebSocket(q.get('ch'), ['sealroom.v1', 'sealroom.bearer.' + q.get('token')]);
  ws.onopen = () => { resolve('open:' + ws.protocol); ws.close(); };
  ws.onerror = () => resolve('refused');
});
document.body.dataset.result = JSON.stringify(out);
</script>"""


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return "chromium is not installed (.ci/run installs Debian's with apt-get)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (a dev dependency: make test installs it)"
    return None


async def _probe(page: Any, url: str) -> dict[str, Any]:
    await page.goto(url)
    await page.wait_for_function("document.body && document.body.dataset.result", timeout=60_000)
    result: dict[str, Any] = json.loads(await page.evaluate("document.body.dataset.result"))
    return result


async def _scenario(tmp: Path) -> None:
    from playwright.async_api import async_playwright

    idp = DevIdp(tmp / "idp")

    async def probe(request: Request) -> HTMLResponse:
        return HTMLResponse(PROBE)

    pages = Starlette(routes=[Route("/", probe)])
    async with live_server(pages) as listed_port, live_server(pages) as other_port:
        listed = f"http://127.0.0.1:{listed_port}"
        settings = Settings(
            database_url=f"sqlite:///{tmp / 'ks.db'}",
            secrets_file=tmp / "secrets.json",
            jwt_issuer=idp.issuer,
            jwks_file=tmp / "unused",
            cors_origins=(listed,),
            web_root=WEB,
        )
        keyservice = create_app(settings, jwks=JwksSource(document=idp.jwks))
        conference = create_conference_app(
            ConferenceSettings(jwt_issuer=idp.issuer, allowed_origins=(listed,)),
            JwksSource(document=idp.jwks),
        )
        async with live_server(keyservice) as ks, live_server(conference) as conf:
            query = (
                f"?ks=http://127.0.0.1:{ks}&ch=ws://127.0.0.1:{conf}/v1/meetings/m1/channel"
                f"&token={idp.issue('alice', AUDIENCE)}"
            )
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                try:
                    page = await browser.new_page()
                    # The web core itself, served from the key service's origin.
                    await page.goto(f"http://127.0.0.1:{ks}/web/")
                    await page.wait_for_function("document.body.dataset.status", timeout=60_000)
                    checks = await page.inner_text("#checks")
                    assert await page.evaluate("document.body.dataset.status") == "ok", checks
                    friend = await _probe(page, listed + "/" + query)
                    assert friend["get"] == 200
                    assert isinstance(friend["post"], int)  # answered and readable (a refusal)
                    assert friend["channel"] == "open:sealroom.v1"
                    stranger = await _probe(page, f"http://127.0.0.1:{other_port}/" + query)
                    assert stranger == {"get": "blocked", "post": "blocked", "channel": "refused"}
                finally:
                    await browser.close()


def test_in_chromium_only_listed_origins_reach_the_services(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    node_or_skip()  # installs web/'s packages, which the self-check page loads
    asyncio.run(_scenario(tmp_path))
