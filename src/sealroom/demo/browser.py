"""A browser participant for the demo, the tests and the benchmark: the web client's
meeting page (``web/meeting.html``) in Debian's headless Chromium, driven by Playwright.

Chromium gets fake camera and microphone devices (a test pattern and a beep) and may play
audio without a click. Playwright's own browser download is not used: the executable is
``/usr/bin/chromium``. Everything the page knows is read from ``window.sealroom`` (its
state, counts and, with ``inspect=1``, digests of what it decoded); no key ever leaves it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

__all__ = ["CHROMIUM", "FLAGS", "BrowserParticipant", "page_url", "unavailable"]

CHROMIUM = Path("/usr/bin/chromium")
#: Flags that work on this project's machines, plus fake media devices and autoplay.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def unavailable() -> str | None:
    """Why a browser participant cannot run here, or None if it can."""
    if not CHROMIUM.exists():
        return f"chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401, PLC0415
    except ImportError:
        return "playwright is not installed (pip install playwright; its browser is not needed)"
    return None


def page_url(
    keyservice: str,
    *,
    conference: str,
    idp: str,
    meeting: str,
    host: str,
    invitees: Sequence[str],
    user: str,
    mode: str = "approval",
    extra: Mapping[str, str] | None = None,
) -> str:
    """The meeting page's URL on the key service, set to sign in and join at once."""
    query = {
        "meeting": meeting,
        "host": host,
        "invitees": ",".join(invitees),
        "conference": conference,
        "idp": idp,
        "user": user,
        "mode": mode,
        "auto": "1",
        **(extra or {}),
    }
    return f"{keyservice}/web/meeting.html?{urlencode(query)}"


class BrowserParticipant:
    """One meeting page in its own headless Chromium (a fresh profile)."""

    def __init__(self) -> None:
        self._pw: Any = None
        self._browser: Any = None
        self.page: Any = None
        self.console: list[str] = []
        self._profile = Path(tempfile.mkdtemp(prefix="sealroom-chromium-"))

    async def start(self) -> None:
        from playwright.async_api import async_playwright  # noqa: PLC0415

        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch_persistent_context(
            str(self._profile),
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        self.page = await self._browser.new_page()
        self.page.on("console", lambda m: self._log(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self._log(f"pageerror: {e}"))

    def _log(self, line: str) -> None:
        self.console.append(line)
        del self.console[:-200]

    async def open(self, url: str) -> float:
        """Open the page; returns the wall-clock time it was asked for."""
        opened = time.monotonic()
        await self.page.goto(url)
        return opened

    async def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Wait until a JavaScript expression over the page is truthy; its value."""
        handle = await self.page.wait_for_function(expression, timeout=timeout * 1000)
        return await handle.json_value()

    async def approval_payload(self, timeout: float = 60.0) -> str:
        return str(await self.wait_for("window.sealroom && window.sealroom.approval", timeout))

    async def state(self) -> dict[str, Any]:
        """The page's phase, meeting state (epoch, roster, manager, security code) and
        counts, as the page shows them."""
        data = await self.page.evaluate(
            "JSON.stringify({phase: window.sealroom.phase, error: window.sealroom.error,"
            " snapshot: window.sealroom.snapshot, stats: window.sealroom.stats,"
            " frames: window.sealroom.frames, firstFrameAt: window.sealroom.firstFrameAt,"
            " openedAt: window.sealroom.openedAt, events: window.sealroom.events()})"
        )
        result: dict[str, Any] = json.loads(data)
        return result

    async def report(self) -> dict[str, Any]:
        """The media Worker's counts and what it decoded (digests, tone frequencies)."""
        data = await self.page.evaluate("window.sealroom.report().then(JSON.stringify)")
        result: dict[str, Any] = json.loads(data)
        return result

    async def eventually(self, check: str, timeout: float = 60.0) -> bool:
        """Whether a JavaScript predicate over ``window.sealroom`` comes true in time."""
        try:
            await self.wait_for(check, timeout)
        except Exception:  # Playwright's TimeoutError, or the page went away
            return False
        return True

    async def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def tile_boxes(self) -> dict[str, dict[str, float]]:
        """Where each participant's video is drawn on the page (CSS pixels)."""
        data = await self.page.evaluate(
            "JSON.stringify(Object.fromEntries([...document.querySelectorAll('.tile')]"
            ".map((t) => { const r = t.querySelector('canvas').getBoundingClientRect();"
            " return [t.dataset.sender, {x: r.x, y: r.y, width: r.width, height: r.height}]; })))"
        )
        result: dict[str, dict[str, float]] = json.loads(data)
        return result

    async def close(self) -> None:
        try:
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), 30)
            if self._pw is not None:
                await asyncio.wait_for(self._pw.stop(), 30)
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)
