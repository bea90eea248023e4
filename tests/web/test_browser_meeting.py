"""A browser participant in a live meeting, in a real Chromium (Debian's, through
Playwright), with three Python participants, on the real IdP, key service and
conferencing service on 127.0.0.1.

One meeting is played once per module (:func:`played`), and each test checks one promise
against what happened: the page decodes every Python participant's video to exactly the
frames they sent (luma digests) and hears each one's tone at its frequency; each Python
participant decodes the page's video to exactly the frames it sent; the page shows the
same roster and security code; frames from before the page joined (replayed through the
relay) do not decrypt there; a session key posted by a participant that is not the
manager is ignored; after its removal the page decrypts none of the frames the relay
still sends it; a second page joins through the escrow and sees the meeting end. A
screenshot of the page, with everyone's video, is saved as an artifact and its pixels
checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sealroom.api.encoding import b64e
from sealroom.crypto.envelope import seal
from sealroom.demo.browser import BrowserParticipant, page_url, unavailable
from sealroom.demo.media import StreamDecoder, Track, tone_of
from sealroom.demo.services import Services
from sealroom.media.payload import Packet, pack, unpack
from sealroom.media.sframe import decode_header
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk import ChannelError, FrameReceived, MeetingClient
from tests.live_meeting import Person
from tests.web.node import WEB, node_or_skip

pytestmark = pytest.mark.timeout(420)

# Waits compressed for the test; no timer ratchet in the way (it would blur which key the
# page adopted).
TIMING = Timing(join_retry_delays=(0.2, 0.5, 1.0, 1.0), leave_debounce=0.5, ratchet_interval=600)
PYTHON = {"hana": 1, "bob": 2, "carl": 3}  # the Python participants and their tracks' seeds
MEETING = MeetingConfig("standup-web", host="hana", invitees=("bob", "carl", "ivy", "dan"))
PAGE_SETTINGS = {
    "inspect": "1",
    "retries": "0.2,0.5,1,1",
    "switch": "0.2",
    "video": "240x180@10",
    "keyint": "10",
}
ARTIFACTS = Path(os.environ.get("SEALROOM_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@dataclass
class Attendee:
    """A Python participant: sends a test pattern and a tone, decodes the pages' video."""

    person: Person
    track: Track
    mc: MeetingClient | None = None
    decoders: dict[str, StreamDecoder] = field(default_factory=dict)
    decoded: dict[str, dict[int, str]] = field(default_factory=dict)  # sender -> index -> digest
    events: list[Any] = field(default_factory=list)
    sent_frames: list[bytes] = field(default_factory=list)  # our SFrame frames, as sent
    sending: bool = True

    async def consume(self) -> None:
        assert self.mc is not None
        async for event in self.mc.events():
            if not isinstance(event, FrameReceived):
                self.events.append(event)
                continue
            sender = event.sender
            if sender is None or sender in PYTHON:
                continue
            packet = unpack(event.payload)
            digest = self.decoders.setdefault(sender, StreamDecoder()).decode(packet)
            if digest is not None:
                self.decoded.setdefault(sender, {})[packet.index] = digest

    async def publish(self) -> None:
        assert self.mc is not None
        tick = 0
        while True:
            await asyncio.sleep(0.04)
            if not self.sending:
                continue
            packets: list[Packet] = self.track.audio()
            if tick % 3 == 0:
                packets += self.track.video()  # about 8 frames a second
            tick += 1
            for p in packets:
                await self.mc.publish(pack(p))


@dataclass
class Played:
    """What happened, for the tests to check."""

    tracks: dict[str, Track]
    attendees: dict[str, Attendee]
    codes: dict[str, str | None]
    rosters: dict[str, list[str]]
    page: dict[str, Any]  # ivy's page: state and report before its removal
    qr_decodes_to_payload: bool
    join_epoch: int
    replayed: dict[int, int]  # epoch -> frames from before the join, replayed to the page
    after_replay: dict[str, Any]
    forged: dict[str, Any]
    removed: dict[str, Any]
    screenshot: Path
    tile_pixels: dict[str, dict[str, int]]
    escrow_page: dict[str, Any]
    console: list[str]


def _skip_reason() -> str | None:
    return unavailable()


async def _until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class _Person(Person):
    async def enter(self) -> MeetingClient:
        await self.sdk.initialize()
        self.mc = MeetingClient(
            self.sdk, self.conf, self.config, token=self.token, timing=TIMING, switch_delay=0.2
        )
        return self.mc


async def _forge_session_key(bob: Attendee, epoch: int) -> None:
    """bob, a participant (not the manager), posts a session key of its own: a valid
    envelope to the meeting group, signed by its own device."""
    mc = bob.mc
    assert mc is not None
    assert mc.session.group_key is not None
    session = mc.session
    fake = os.urandom(32)
    envelope = seal(
        fake + (epoch + 1).to_bytes(8, "big"),
        f"{MEETING.meeting_id}/session-key/{epoch + 1}".encode(),
        [session.group_key],
        bob.person.sdk._signer(),
    )
    session._seq += 1
    message = BoardMessage.create(
        bob.person.sdk._signer(),
        meeting=MEETING.meeting_id,
        kind="session-key",
        user="bob",
        device=bob.person.sdk.device_id,
        seq=session._seq,
        body={
            "epoch": epoch + 1,
            "reason": "join",
            "ratchet": False,
            "envelope": b64e(envelope.to_bytes()),
            "prev": b64e(session.roster_head),
            "head": b64e(os.urandom(32)),
            "added": [],
            "removed": [],
            "parts": 0,
            "reset": False,
        },
    )
    await mc._ws.send(json.dumps({"type": "post", "message": json.loads(message.to_json())}))


def _record_sent(attendee: Attendee) -> None:
    """Keep a copy of every SFrame frame this attendee sends (the relay could too)."""
    assert attendee.mc is not None
    ws = attendee.mc._ws
    send = ws.send

    async def recording(data: Any) -> None:
        if isinstance(data, bytes) and len(attendee.sent_frames) < 4000:
            attendee.sent_frames.append(data)
        await send(data)

    ws.send = recording


def _tile_pixels(shot: Path, boxes: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """For each tile: how many pixels are the test pattern's dark background and how many
    its bright bar (green channel near 200)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    out: dict[str, dict[str, int]] = {}
    for sender, box in boxes.items():
        x0, y0 = int(box["x"]) + 2, int(box["y"]) + 2
        x1, y1 = int(box["x"] + box["width"]) - 2, int(box["y"] + box["height"]) - 2
        crop = pixels[y0:y1, x0:x1]
        r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
        dark = int((crop.max(axis=2) < 50).sum())
        bar = int(((g >= 170) & (g <= 230) & (b > 120) & (r < 200)).sum())
        out[sender] = {"dark": dark, "bar": bar, "total": int(crop.shape[0] * crop.shape[1])}
    return out


_QR_CHECK = """async () => {
  const { decodeQR } = await import('qr/decode.js');
  const svg = document.querySelector('#qr svg');
  const img = new Image();
  img.src = 'data:image/svg+xml,' + encodeURIComponent(svg.outerHTML);
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 400;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 400, 400);
  ctx.drawImage(img, 20, 20, 360, 360);
  const { data } = ctx.getImageData(0, 0, 400, 400);
  return decodeQR({ width: 400, height: 400, data }) === window.sealroom.approval;
}"""


async def _play(tmp: Path) -> Played:
    services = Services(tmp, web_root=WEB)
    servers = {"idp": services.idp, "ks": services.ks, "conf": services.conf, "tmp": str(tmp)}
    tasks: list[asyncio.Task[None]] = []
    pages: list[BrowserParticipant] = []
    helpers: list[Person] = []
    attendees = {
        name: Attendee(_Person(servers, name, MEETING), Track(seed))
        for name, seed in PYTHON.items()
    }
    try:
        for name in PYTHON:
            a = attendees[name]
            a.mc = await a.person.enter()
            await (a.mc.start() if name == "hana" else a.mc.join())
            if name == "hana":
                _record_sent(a)
            tasks += [asyncio.create_task(a.consume()), asyncio.create_task(a.publish())]
        hana, bob = attendees["hana"], attendees["bob"]
        # Both joins ratchet the key (once, or twice if they fell in different join
        # windows): wait until the three share a key that has all three in its roster.
        await _until(
            lambda: (
                len({a.mc.session.epoch for a in attendees.values() if a.mc}) == 1
                and all(
                    a.mc and len(a.mc.session.roster) == len(PYTHON) for a in attendees.values()
                )
            ),
            60,
            "the Python participants to share a key",
        )
        await asyncio.sleep(1.0)  # frames of that epoch, before the page joins

        # ivy's laptop is set up (the user exists); her browser is approved from it.
        laptop = _Person(servers, "ivy", MEETING)
        helpers.append(laptop)
        await laptop.sdk.initialize()
        ivy = BrowserParticipant()
        pages.append(ivy)
        await ivy.start()
        url = page_url(
            services.ks,
            conference=services.conf,
            idp=services.idp,
            meeting=MEETING.meeting_id,
            host=MEETING.host,
            invitees=MEETING.invitees,
            user="ivy",
            extra=PAGE_SETTINGS,
        )
        await ivy.open(url)
        payload = await ivy.approval_payload()
        qr_ok = bool(await ivy.page.evaluate(_QR_CHECK))
        await laptop.sdk.approve_device(payload)
        assert await ivy.eventually("window.sealroom.phase === 'in-meeting'", 60), ivy.console
        join_epoch = int((await ivy.state())["snapshot"]["epoch"] or 0)
        if not join_epoch:
            await ivy.eventually("window.sealroom.snapshot && window.sealroom.snapshot.epoch", 10)
            join_epoch = int((await ivy.state())["snapshot"]["epoch"])

        # Media both ways, until every Python participant decoded some of the page's video
        # and the page enough of everyone's.
        def enough() -> bool:
            return all(len(a.decoded.get("ivy", {})) >= 8 for a in attendees.values())

        await _until(enough, 90, "every Python participant to decode the page's video")
        await ivy.eventually(
            "Object.keys(window.sealroom.frames).length >= 3 && "
            "Object.values(window.sealroom.frames).every((n) => n >= 15)",
            60,
        )
        # Frames from before the page joined, replayed through the relay.
        replayed: dict[int, int] = {}
        for frame in list(hana.sent_frames):
            epoch = decode_header(frame)[0] >> 16
            if epoch < join_epoch and replayed.get(epoch, 0) < 15:
                replayed[epoch] = replayed.get(epoch, 0) + 1
                await hana.mc._ws.send(frame)  # type: ignore[union-attr]
                await asyncio.sleep(0.03)  # at a media pace: the relay drops bursts
        await asyncio.sleep(1.5)
        after_replay = await ivy.report()

        # A forged session key from a participant that is not the manager.
        epoch_before = int((await ivy.state())["snapshot"]["epoch"])
        await _forge_session_key(bob, epoch_before)
        await asyncio.sleep(2.0)
        forged = {
            "before": epoch_before,
            "state": await ivy.state(),
            "hana": hana.mc.session.epoch,  # type: ignore[union-attr]
            "relay": [e.code for e in bob.events if isinstance(e, ChannelError)],
        }

        await asyncio.sleep(1.0)
        page = {"state": await ivy.state(), "report": await ivy.report()}
        codes = {n: a.mc.security_code() for n, a in attendees.items() if a.mc}
        codes["ivy"] = page["state"]["snapshot"]["code"]
        rosters = {n: list(a.mc.session.roster) for n, a in attendees.items() if a.mc}
        rosters["ivy"] = page["state"]["snapshot"]["roster"]
        shot = await ivy.screenshot(ARTIFACTS / "browser-participant.png")
        pixels = _tile_pixels(shot, await ivy.tile_boxes())

        # dan joins from a second page, through the escrow (split trust), receiving only.
        dan_laptop = _Person(servers, "dan", MEETING)
        helpers.append(dan_laptop)
        await dan_laptop.sdk.initialize()
        dan = BrowserParticipant()
        pages.append(dan)
        await dan.start()
        await dan.open(
            page_url(
                services.ks,
                conference=services.conf,
                idp=services.idp,
                meeting=MEETING.meeting_id,
                host=MEETING.host,
                invitees=MEETING.invitees,
                user="dan",
                mode="escrow",
                extra={**PAGE_SETTINGS, "send": "0"},
            )
        )
        dan_joined = await dan.eventually("window.sealroom.phase === 'in-meeting'", 90)
        dan_frames = await dan.eventually(
            "window.sealroom.frames.hana >= 5 && window.sealroom.frames.ivy >= 3", 60
        )

        # hana removes ivy, who stays connected to the relay while the others go on.
        await hana.mc.remove("ivy")  # type: ignore[union-attr]
        removed_seen = await ivy.eventually("window.sealroom.phase === 'removed'", 30)
        fresh = hana.mc.session.epoch  # type: ignore[union-attr]
        await _until(lambda: hana.mc.session.epoch != fresh, 30, "the rekey after the removal")  # type: ignore[union-attr]
        await asyncio.sleep(3.0)
        removed = {
            "seen": removed_seen,
            "state": await ivy.state(),
            "report": await ivy.report(),
            "new_epoch": hana.mc.session.epoch,  # type: ignore[union-attr]
        }
        await ivy.screenshot(ARTIFACTS / "browser-participant-removed.png")

        # hana ends the meeting: dan's page says so and holds no key.
        for a in attendees.values():
            a.sending = False
        await hana.mc.end()  # type: ignore[union-attr]
        ended = await dan.eventually("window.sealroom.phase === 'ended'", 30)
        await asyncio.sleep(0.5)
        escrow_page = {
            "joined": dan_joined,
            "frames": dan_frames,
            "ended": ended,
            "state": await dan.state(),
            "report": await dan.report(),
        }
        return Played(
            tracks={n: a.track for n, a in attendees.items()},
            attendees=attendees,
            codes=codes,
            rosters=rosters,
            page=page,
            qr_decodes_to_payload=qr_ok,
            join_epoch=join_epoch,
            replayed=replayed,
            after_replay=after_replay,
            forged=forged,
            removed=removed,
            screenshot=shot,
            tile_pixels=pixels,
            escrow_page=escrow_page,
            console=ivy.console + dan.console,
        )
    finally:
        for t in tasks:
            t.cancel()
        for p in pages:
            with contextlib.suppress(Exception):
                await p.close()
        for a in attendees.values():
            if a.mc is not None:
                with contextlib.suppress(Exception):
                    await a.mc.close()
            with contextlib.suppress(Exception):
                await a.person.sdk.aclose()
        for h in helpers:
            await h.sdk.aclose()
        services.stop()


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    node_or_skip()  # installs web/'s pinned packages, which the page loads
    return asyncio.run(_play(tmp_path_factory.mktemp("browser-meeting")))


def test_the_page_decodes_every_python_participants_video_to_what_was_sent(
    played: Played,
) -> None:
    received = played.page["report"]["received"]
    for name in PYTHON:
        frames = received.get(name, {})
        assert len(frames) >= 10, (name, len(frames))
        sent = played.tracks[name].sent
        wrong = [i for i, d in frames.items() if sent.get(("video", int(i))) != d]
        assert not wrong, (name, wrong[:5])


def test_the_page_hears_each_python_participants_tone(played: Played) -> None:
    tones = played.page["report"]["toneHz"]
    for name, seed in PYTHON.items():
        assert tones.get(name) is not None, (name, tones)
        assert abs(tones[name] - tone_of(seed)) < 3.0, (name, tones[name], tone_of(seed))


def test_every_python_participant_decodes_the_pages_video_to_what_it_sent(
    played: Played,
) -> None:
    sent = played.removed["report"]["sent"]  # every frame the page encoded, as decoded there
    for name, a in played.attendees.items():
        got = a.decoded.get("ivy", {})
        assert len(got) >= 8, (name, len(got))
        wrong = [i for i, d in got.items() if sent.get(str(i)) != d]
        assert not wrong, (name, len(got), wrong[:5])


def test_the_page_shows_the_same_roster_and_security_code(played: Played) -> None:
    assert played.codes["ivy"] is not None
    assert len(set(played.codes.values())) == 1, played.codes
    assert all(r == ["bob", "carl", "hana", "ivy"] for r in played.rosters.values()), played.rosters
    assert played.qr_decodes_to_payload  # the QR code on the page is the approval payload


def test_frames_from_before_the_page_joined_do_not_decrypt_there(played: Played) -> None:
    assert sum(played.replayed.values()) >= 10, played.replayed
    report = played.after_replay
    decrypted_epochs = {int(e) for e in report["decrypted"]}
    assert min(decrypted_epochs) >= played.join_epoch, (decrypted_epochs, played.join_epoch)
    for epoch, count in played.replayed.items():
        assert report["failed"].get(str(epoch), 0) >= count, (epoch, report["failed"])


def test_a_session_key_posted_by_a_participant_is_ignored(played: Played) -> None:
    state = played.forged["state"]
    bad = [
        e
        for e in state["events"]
        if e["kind"] == "bad_message" and e["detail"].get("why") == "not the manager"
    ]
    # The relay refuses it first (only the meeting's control posters may post session keys,
    # docs/meetings.md); had it got through, the page refuses it itself, as the Python
    # session does (the cross-language session cases in tests/web/session_cases.py replay
    # exactly this forged post through the page's session code).
    assert "not_allowed" in played.forged["relay"] or bad, state["events"][-20:]
    # The page stayed on the manager's key: same epoch as hana, and hana's frames decrypt.
    assert state["snapshot"]["epoch"] == played.forged["hana"] == played.forged["before"]
    assert played.page["report"]["decrypted"].get(str(played.forged["before"]), 0) > 0


def test_after_its_removal_the_page_decrypts_nothing_the_relay_sends(played: Played) -> None:
    removed = played.removed
    assert removed["seen"], removed["state"]["events"][-10:]
    since = removed["report"]["sinceForget"]
    assert since["decrypted"] == 0, since
    assert since["failed"] >= 20, since  # the relay kept sending; none of it decrypted
    assert removed["report"]["epochs"] == []  # no key left in the page
    assert removed["state"]["snapshot"]["epoch"] is None
    assert str(removed["new_epoch"]) not in removed["report"]["decrypted"]


def test_a_page_joins_through_the_escrow_and_sees_the_meeting_end(played: Played) -> None:
    page = played.escrow_page
    assert page["joined"], page["state"]
    assert page["frames"], (page["state"], page.get("report"))
    events = [e["kind"] for e in page["state"]["events"]]
    assert "device_registered" in events
    assert page["ended"]
    assert page["state"]["phase"] == "ended"
    assert page["report"]["epochs"] == []
    assert "device_forgotten" in events


def test_the_screenshot_shows_everyones_decoded_video(played: Played) -> None:
    assert played.screenshot.exists()
    for name in PYTHON:
        px = played.tile_pixels.get(name)
        assert px is not None, played.tile_pixels
        # The test pattern: mostly its dark background, and its bright bar.
        assert px["dark"] > px["total"] * 0.4, (name, px)
        assert px["bar"] > px["total"] * 0.02, (name, px)
