"""The demo's browser participant (``sealroom demo --browser``): the web client's meeting
page in headless Chromium, as one more attendee of the meeting script.

Its user's laptop (a Python device) approves the page from the payload the page shows (QR
code and text). The page joins, decodes everyone's video and audio in its media Worker,
and sends a camera and a microphone (Chromium's fake devices). The demo checks the same
kind of claims for it as for the others: what it decoded is what was sent, the others
decode what it sent, it shows the same security code, and it holds no key at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealroom.demo.browser import BrowserParticipant, page_url, unavailable
from sealroom.demo.media import StreamDecoder, Track, tone_of
from sealroom.media.payload import Packet
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import Client

__all__ = ["WEB_NAME", "WebAttendee", "web_root", "why_not"]

WEB_NAME = "ivy"
#: The events the timeline shows for the browser, as the page reports them.
_SHOWN = {"joined", "key_installed", "rekeyed", "manager", "participant_left", "ended", "removed"}


def web_root() -> Path | None:
    """The web client of this checkout, if it is there with its packages installed."""
    web = Path(__file__).resolve().parents[3] / "web"
    return web if (web / "meeting.html").is_file() else None


def why_not() -> str | None:
    """Why the browser participant cannot join here, or None if it can."""
    reason = unavailable()
    if reason is not None:
        return reason
    web = web_root()
    if web is None:
        return "the web client (web/) is not in this installation"
    if not (web / "node_modules" / "mcl-wasm").is_dir():
        return "the web client's packages are not installed (run `make web`)"
    return None


class WebAttendee:
    """ivy, in a browser: the page, her laptop, and what the others decoded of her video."""

    def __init__(self, label: str) -> None:
        self.label = label  # her row on the timeline
        self.browser = BrowserParticipant()
        self.decoders: dict[str, StreamDecoder] = {}
        self.decoded: dict[str, dict[int, str]] = {}  # receiver -> index -> digest
        self.seen = 0  # page events already copied to the timeline
        self.report: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.opened_at = 0.0

    async def join(
        self,
        services: Any,
        config: MeetingConfig,
        laptop: Client,
        say: Callable[[str], None],
        *,
        retries: str,
        switch: float,
    ) -> bool:
        """Open the page, approve it from the laptop, wait until it is in the meeting."""
        await self.browser.start()
        url = page_url(
            services.ks,
            conference=services.conf,
            idp=services.idp,
            meeting=config.meeting_id,
            host=config.host,
            invitees=config.invitees,
            user=WEB_NAME,
            extra={
                "inspect": "1",
                "retries": retries,
                "switch": str(switch),
                "video": "240x180@10",
                "keyint": "10",
            },
        )
        self.opened_at = time.monotonic()
        await self.browser.open(url)
        payload = await self.browser.approval_payload()
        say(
            f"{WEB_NAME} opens the meeting page in Chromium; it shows an approval code "
            f"({len(payload)} characters, as a QR code and as text), which {WEB_NAME}'s "
            "laptop approves"
        )
        await laptop.approve_device(payload)
        return await self.browser.eventually("window.sealroom.phase === 'in-meeting'", 90)

    def frame(self, receiver: str, packet: Packet) -> None:
        """A Python attendee decoded a frame of the page's video."""
        digest = self.decoders.setdefault(receiver, StreamDecoder()).decode(packet)
        if digest is not None:
            self.decoded.setdefault(receiver, {})[packet.index] = digest

    async def follow(self, t0: float, events: list[tuple[float, str, str, dict[str, Any]]]) -> None:
        """Copy the page's meeting events onto the demo's timeline (the page stamps them
        with its own clock, which starts about when the page was opened)."""
        while True:
            await asyncio.sleep(0.5)
            with contextlib.suppress(Exception):
                state = await self.browser.state()
                self.state = state
                page_events = state["events"]
                for e in page_events[self.seen :]:
                    if e["kind"] in _SHOWN:
                        at = self.opened_at - t0 + float(e["at"]) / 1000
                        events.append((at, self.label, e["kind"], dict(e["detail"])))
                self.seen = len(page_events)

    async def refresh(self) -> None:
        self.state = await self.browser.state()
        self.report = await self.browser.report()

    def decoded_ok(self, tracks: dict[str, Track]) -> tuple[int, int, list[str]]:
        """(frames the page decoded that match what was sent, mismatches, senders seen)."""
        good = bad = 0
        for sender, frames in self.report.get("received", {}).items():
            track = tracks.get(sender)
            if track is None:
                continue
            for index, digest in frames.items():
                if track.sent.get(("video", int(index))) == digest:
                    good += 1
                else:
                    bad += 1
        return good, bad, sorted(s for s in self.report.get("received", {}) if s in tracks)

    def tones_ok(self, seeds: dict[str, int]) -> bool:
        tones = self.report.get("toneHz", {})
        return bool(seeds) and all(
            tones.get(name) is not None and abs(tones[name] - tone_of(seed)) < 3.0
            for name, seed in seeds.items()
        )

    def others_decoded_ok(self, decoded: dict[str, dict[int, str]]) -> tuple[int, int, int]:
        """(receivers, frames they decoded matching the page's, mismatches), for what the
        receivers had decoded (``decoded``, copied) before the page's report was taken:
        the page decoded each frame it sent, so every one of them is in its report."""
        sent = self.report.get("sent", {})
        last = max((int(i) for i in sent), default=-1)
        judged = [(i, g) for d in decoded.values() for i, g in d.items() if i <= last]
        good = sum(1 for i, g in judged if sent.get(str(i)) == g)
        return len(decoded), good, len(judged) - good

    async def close(self) -> None:
        await self.browser.close()

    def table_row(self, epochs: list[int]) -> dict[int, str]:
        """The browser's cells of the demo's participants x epochs table."""
        decrypted = self.report.get("decrypted", {})
        failed = self.report.get("failed", {})
        row = {}
        for e in epochs:
            if decrypted.get(str(e)):
                row[e] = f"decrypted {decrypted[str(e)]}"
            elif failed.get(str(e)):
                row[e] = f"REFUSED {failed[str(e)]}"
            else:
                row[e] = "-"
        return row
