"""``sealroom demo``: a whole encrypted meeting with real media, on real local services.

It starts the development IdP, the key service (SQLite) and the conferencing service on
127.0.0.1, then plays a meeting script with N participants (time compressed where the
protocol waits): the host arrives late, a pre-approved invitee joins at once, one
participant leaves (debounced rekey), one is removed and keeps receiving the relayed stream
but decrypts none of it, the scheduled ratchet fires, a lost device is revoked, the meeting
ends and device keys rotate. Along the way: encrypted chat, a shared file, a recording in
authenticated chunks, a transcript and an abuse report to a safety team. Afterwards a new
device of an attendee reads the recording and the revoked one cannot.

Video is VP8 and audio Opus (PyAV); every frame is SFrame-encrypted, relayed, decrypted,
decoded and compared with what was sent. With ``browser=True`` (``sealroom demo
--browser``) another kind of attendee joins: the web client's meeting page in headless
Chromium (:mod:`sealroom.demo.web_attendee`), approved from its user's laptop; its claims
are checked with the others', and a screenshot of its page is saved beside the timeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sealroom.crypto.envelope import Envelope
from sealroom.demo.media import Track, TrackDecoder
from sealroom.demo.services import Services
from sealroom.demo.timeline import draw
from sealroom.demo.web_attendee import WEB_NAME, WebAttendee, web_root, why_not
from sealroom.keyservice import audit as audit_module
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.keyservice.storage import open_database
from sealroom.media.keys import FrameRejectedError, Receiver
from sealroom.media.payload import pack, unpack
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk import (
    BasicSplitTrust,
    Client,
    DecryptionFailed,
    FrameReceived,
    MeetingClient,
    SdkError,
    ServiceRefusedError,
    Target,
)

__all__ = [
    "NAMES",
    "PATIENCE",
    "TIMING",
    "Attendee",
    "Demo",
    "DemoResult",
    "print_result",
    "run_demo",
]

NAMES = ["uma", "hana", "bob", "carl", "dina", "erin", "finn", "gus"]
# How long a step may take before the demo calls it failed. Waits return as soon as the
# step is done (a few seconds on an idle machine); the margin is for a loaded one.
PATIENCE = 60.0
TIMING = Timing(join_retry_delays=(0.2, 0.5, 1.0, 1.0), leave_debounce=1.0, ratchet_interval=6.0)
VIDEO_FPS, AUDIO_PPS = 4, 8


@dataclass
class Attendee:
    name: str
    sdk: Client
    track: Track
    mc: MeetingClient | None = None
    decoder: TrackDecoder = field(default_factory=TrackDecoder)
    # epoch -> counters: decrypted frames that decoded to what was sent, mismatches, refusals
    ok: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    bad: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sending: bool = False


@dataclass
class DemoResult:
    ok: bool
    claims: list[tuple[str, bool]]
    table: dict[str, dict[int, str]]
    events: list[tuple[float, str, str, dict[str, Any]]]
    picture: Path | None
    seconds: float
    screenshot: Path | None = None


class Demo:
    def __init__(
        self,
        out: TextIO,
        participants: int,
        data_dir: Path,
        picture: Path | None,
        browser: bool = False,
    ) -> None:
        self.out, self.n, self.dir, self.picture = out, participants, data_dir, picture
        self.web: WebAttendee | None = None
        self.want_browser = browser
        self.screenshot: Path | None = None
        self.t0 = time.monotonic()
        self.people: dict[str, Attendee] = {}
        self.events: list[tuple[float, str, str, dict[str, Any]]] = []
        self.claims: list[tuple[str, bool]] = []
        self.tracks: dict[str, Track] = {}
        self._last_refusal: dict[str, float] = {}
        self.services: Services | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: list[Client] = []  # every SDK client made, closed however the run ends

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", file=self.out, flush=True)

    def claim(self, text: str, holds: bool) -> None:
        self.claims.append((text, holds))
        self.say(f"{'OK  ' if holds else 'FAIL'} {text}")

    def client(self, user: str, device: str = "laptop") -> Client:
        s = self.services
        assert s is not None

        def token(audience: str) -> str:
            return s.token(user, audience)

        def half() -> bytes:
            return s.provider_half(user)

        made = Client(
            s.ks,
            jwt=token,
            secret=BasicSplitTrust(half),
            keystore=self.dir / "clients" / user / f"{device}.json",
            device_name=device,
        )
        self._clients.append(made)
        return made

    # --- media --------------------------------------------------------------------------

    async def _media(self, a: Attendee) -> None:
        tick = 0
        while True:
            await asyncio.sleep(1 / AUDIO_PPS)
            if not a.sending or a.mc is None:
                continue
            packets = a.track.audio()
            if tick % (AUDIO_PPS // VIDEO_FPS) == 0:
                packets += a.track.video()
            tick += 1
            for p in packets:
                await a.mc.publish(pack(p))

    async def _events(self, a: Attendee) -> None:
        assert a.mc is not None
        async for event in a.mc.events():
            t = time.monotonic() - self.t0
            if isinstance(event, FrameReceived) and self.web and event.sender == WEB_NAME:
                self.web.frame(a.name, unpack(event.payload))
            elif isinstance(event, FrameReceived):
                if event.sender is None:
                    continue  # (its epoch's roster is not known here yet)
                packet = unpack(event.payload)
                expected = self.tracks[event.sender].sent.get((packet.kind, packet.index))
                good = expected is not None and a.decoder.decode(packet) == expected
                (a.ok if good else a.bad)[event.epoch] += 1
            elif isinstance(event, DecryptionFailed):
                kid = event.kid
                a.refused[(kid >> 16) if kid is not None else -1] += 1
                last = self._last_refusal.get(a.name, -1.0)
                if t - last >= 0.25:  # one mark per quarter second is enough to see
                    self._last_refusal[a.name] = t
                    self.events.append((t, a.name, "refused", {}))
            else:
                self.events.append((t, a.name, event.name, dataclasses.asdict(event)))

    async def _enter(self, a: Attendee, *, start: bool = False) -> None:
        s = self.services
        assert s is not None

        def token(audience: str) -> str:
            return s.token(a.name, audience)

        a.mc = MeetingClient(
            a.sdk, s.conf, self.config, token=token, timing=TIMING, switch_delay=0.3
        )
        await (a.mc.start() if start else a.mc.join())
        self._tasks.append(asyncio.create_task(self._events(a)))
        a.sending = True

    @staticmethod
    async def _eventually(check: Callable[[], bool], timeout: float = PATIENCE) -> bool:
        """Whether ``check`` comes true within ``timeout`` (events arrive asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.05)
        return check()

    async def _refused_before_membership(self, who: Attendee, envelope: bytes) -> bool:
        """Whether the key service refuses to open, for ``who``, a key posted before it
        joined (``who`` could have recorded the relayed media of that epoch)."""
        try:
            await who.sdk.decrypt_unmanaged(
                Envelope.from_bytes(envelope), 0, Target.group(self.config.meeting_id)
            )
        except ServiceRefusedError as exc:
            return exc.code == "before_membership"
        return False

    async def _admit_when_knocking(self, manager: Attendee, user: str) -> None:
        """An uninvited participant knocks; the manager lets it in."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if any(
                kind == "knock" and who == manager.name and d.get("user") == user
                for _, who, kind, d in self.events
            ):
                self.say(f"{user} was not invited and knocks; {manager.name} admits it")
                assert manager.mc is not None
                await manager.mc.admit(user)
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{user} never knocked")

    async def _wait_epoch(self, names: list[str], above: int, timeout: float = PATIENCE) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            epochs = {self._epoch_or_none(n) for n in names}
            if len(epochs) == 1:
                only = epochs.pop()
                if only is not None and only > above:
                    return only
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{names} did not reach an epoch above {above}")

    def _epoch_or_none(self, name: str) -> int | None:
        mc = self.people[name].mc
        return None if mc is None else mc.session.epoch

    def _epoch(self, name: str) -> int:
        a = self.people[name]
        return (a.mc.session.epoch if a.mc else None) or 0

    # --- the script ----------------------------------------------------------------------

    async def run(self) -> DemoResult:
        self.say(
            "starting the IdP, the key service (SQLite) and the conferencing service on 127.0.0.1"
        )
        if self.want_browser:
            reason = why_not()
            if reason is None:
                self.web = WebAttendee(f"{WEB_NAME} (browser)")
            else:
                self.say(f"no browser participant: {reason}")
        self.services = Services(self.dir, web_root=web_root() if self.web else None)
        try:
            return await self._script()
        finally:
            try:
                for t in self._tasks:
                    t.cancel()
                for a in self.people.values():
                    if a.mc is not None:
                        await a.mc.close()
                for c in self._clients:
                    await c.aclose()
                if self.web is not None:
                    await self.web.close()
            finally:
                self.services.stop()  # the three service processes, whatever happened above

    async def _script(self) -> DemoResult:
        names = NAMES[: self.n]
        host, starter, invitee = "hana", "uma", "bob"
        leaver, removed = names[3] if self.n > 3 else None, names[4] if self.n > 4 else None
        web = (WEB_NAME,) if self.web is not None else ()
        self.config = MeetingConfig("standup", host=host, invitees=(invitee, *web))
        for i, name in enumerate(names):
            sdk = self.client(name)
            await sdk.initialize()
            self.tracks[name] = Track(i + 1)
            self.people[name] = Attendee(name, sdk, self.tracks[name])
            self._tasks.append(asyncio.create_task(self._media(self.people[name])))
        self.say(
            f"{self.n} users signed in; each created its key pair and escrowed it "
            "(split trust between the key service and the provider)"
        )
        uma, hana, bob = self.people[starter], self.people[host], self.people[invitee]
        team = [n for n in names if n != removed]
        await uma.sdk.create_group("team")  # durable group for the artifacts
        for n in team[1:]:
            await uma.sdk.add_member("team", n)
        sam = self.client("sam")
        await sam.initialize()
        await uma.sdk.create_group("safety-team")
        await uma.sdk.add_member("safety-team", "sam")
        phone = self.client(invitee, "phone")
        await phone.initialize()

        self.say(
            f"{starter} starts the meeting; the host {host} is late; {invitee} is pre-approved"
        )
        await self._enter(uma, start=True)
        await self._wait_epoch([starter], -1)
        await self._enter(bob)
        earlier: dict[str, bytes] = {}  # the newest key post each knocker could have seen
        for n in names[3:]:
            assert uma.mc is not None
            earlier[n] = uma.mc.session.last_envelope
            await self._enter(self.people[n])
            await self._admit_when_knocking(uma, n)
        if self.web is not None:
            await self._browser_joins()
        present = [n for n in names if n != host]
        epoch = await self._wait_epoch(present, 0)
        self.say(f"everyone present shares epoch {epoch}; media is flowing")
        if earlier:
            late = names[-1]
            self.claim(
                f"{late}, admitted after knocking, cannot have the key from before it joined "
                "opened (the meeting group is forward-only)",
                await self._refused_before_membership(self.people[late], earlier[late]),
            )
        chat = await bob.sdk.encrypt_document(
            "chat-1", b"hi all, agenda in the file", groups=["team"]
        )
        reply = await uma.sdk.encrypt_document("chat-2", b"thanks bob", groups=["team"])
        shared = await uma.sdk.encrypt_document(
            "file-1", b"Q3 numbers (confidential)", groups=["team"]
        )
        await asyncio.sleep(1.5)

        self.say(f"the host {host} arrives and takes over management (fresh key)")
        before = self._epoch(starter)
        await self._enter(hana)
        epoch = await self._wait_epoch([*present, host], before)
        self.claim(
            f"the late host took over and rekeyed (epoch {epoch})",
            all(p.mc.session.manager == host for p in self.people.values() if p.mc is not None),
        )
        await asyncio.sleep(1.5)

        if leaver:
            self.say(
                f"{leaver} leaves; the manager waits {TIMING.leave_debounce:.0f} s for "
                "more leaves, then sends a fresh key"
            )
            before = self._epoch(host)
            left = self.people[leaver]
            left.sending = False
            assert left.mc is not None
            await left.mc.leave()
            present = [n for n in present if n != leaver]
            epoch = await self._wait_epoch([*present, host], before)
            self.claim(
                f"{leaver} holds no key for epoch {epoch}", epoch not in left.mc.receiver.epochs
            )
            await asyncio.sleep(1.0)

        if removed:
            victim = self.people[removed]
            assert victim.mc is not None
            old_epoch, old_sk = victim.mc.session.epoch, victim.mc.session._sk
            self.say(f"{host} removes {removed}, who stays connected to the relay")
            before = self._epoch(host)
            await hana.mc.remove(removed)  # type: ignore[union-attr]
            present = [n for n in present if n != removed]
            victim.sending = False
            epoch = await self._wait_epoch([*present, host], before)
            rogue = Receiver()
            if old_epoch is not None and old_sk is not None:
                rogue.install(old_epoch, old_sk, 0.0)
            await asyncio.sleep(1.0)
            await self._eventually(lambda: sum(victim.refused.values()) > 0)
            sender = hana.mc._sender  # type: ignore[union-attr]
            leaked = 0
            if sender is not None:
                try:
                    rogue.decrypt(b"", sender.encrypt(b"", b"probe"), 0.0)
                    leaked += 1
                except FrameRejectedError:
                    pass
            new_ok = sum(v for e, v in victim.ok.items() if e >= epoch)
            self.claim(
                f"{removed} decrypted none of the {sum(victim.refused.values())} "
                f"frames relayed to it after the rekey, even with its old keys",
                new_ok == 0 and leaked == 0 and sum(victim.refused.values()) > 0,
            )

        self.say(
            f"waiting for the scheduled ratchet (every {TIMING.ratchet_interval:.0f} s "
            "without a rekey)"
        )
        before = self._epoch(host)
        epoch = await self._wait_epoch(
            [*present, host], before, timeout=TIMING.ratchet_interval + PATIENCE
        )
        everyone = {*present, host}
        ratcheted = await self._eventually(
            lambda: (
                {
                    who
                    for _, who, kind, d in self.events
                    if kind == "rekeyed" and d.get("epoch") == epoch and d.get("reason") == "timer"
                }
                == everyone
            )
        )
        self.claim(
            f"the timer ratcheted everyone to epoch {epoch}, each deriving it locally", ratcheted
        )

        self.say(f"{invitee}'s phone is lost: revoked from the laptop")
        await bob.sdk.revoke_device(phone.device_id)
        try:
            await phone.decrypt_document(chat)
            lost_refused = False
        except (ServiceRefusedError, SdkError):
            lost_refused = True
        self.claim("the lost phone can no longer read the chat", lost_refused)

        transcript = await hana.sdk.encrypt_document(
            "transcript-1", b"hana: let's ship", groups=["team"]
        )
        report = await bob.sdk.encrypt_document(
            "report-1", f"abuse by {removed}".encode(), groups=["safety-team"]
        )
        opened = await sam.open_document(report)  # names its sealer, checked by certificate
        self.claim(
            f"the safety team reads the abuse report, sealed by {opened.sealer.user_id}'s "
            "device (the reporter)",
            opened.data.startswith(b"abuse") and opened.sealer.user_id == bob.name,
        )
        self.claim(
            "attendees read the chat messages, the shared file and the transcript",
            await uma.sdk.decrypt_document(chat) == b"hi all, agenda in the file"
            and await bob.sdk.decrypt_document(reply) == b"thanks bob"
            and await bob.sdk.decrypt_document(shared) == b"Q3 numbers (confidential)"
            and await bob.sdk.decrypt_document(transcript) == b"hana: let's ship",
        )

        self.say("the host's video is recorded and sealed in authenticated chunks")
        recording = io.BytesIO()
        frames = b"".join(pack(p) for p in self.tracks[host].video())  # a short clip
        await uma.sdk.encrypt_stream(
            "recording-1", io.BytesIO(frames * 200), recording, groups=["team"], chunk_size=16384
        )
        if self.web is not None:
            await self._browser_claims(epoch, [*present, host])
        self.say("the host ends the meeting: the group is deleted, keys dropped")
        for a in self.people.values():
            a.sending = False
        await hana.mc.end()  # type: ignore[union-attr]
        keys_dropped = await self._eventually(
            lambda: all(
                not a.mc.receiver.epochs
                for a in self.people.values()
                if a.mc is not None and a.name in [*present, host]
            )
        )
        try:
            await uma.sdk.group("standup")
            deleted = False
        except ServiceRefusedError:
            deleted = True
        self.claim(
            "the meeting group is gone and no participant holds a media key",
            deleted and keys_dropped,
        )
        if self.web is not None:
            await self._browser_ended()

        tablet = self.client(invitee, "tablet")
        await tablet.initialize()
        out = io.BytesIO()
        await tablet.decrypt_stream(io.BytesIO(recording.getvalue()), out)
        self.claim(
            f"{invitee}'s new tablet reads the {len(out.getvalue()) // 1024} KiB "
            "recording after the meeting",
            out.getvalue() == frames * 200,
        )
        try:
            await phone.decrypt_stream(io.BytesIO(recording.getvalue()), io.BytesIO())
            revoked_reads = True
        except (ServiceRefusedError, SdkError):
            revoked_reads = False
        self.claim("the revoked phone cannot read the recording", not revoked_reads)

        rotated = await self._eventually(
            lambda: (
                {who for _, who, kind, _ in self.events if kind == "device_rotated"} == set(names)
            )
        )
        self.claim("every participant's device rotated its key pair after the meeting", rotated)
        report_ok = self._verify_audit()
        self.claim(
            f"the audit log verifies ({report_ok[1]} entries, hash-chained and signed)",
            report_ok[0],
        )
        mismatched = sum(sum(a.bad.values()) for a in self.people.values())
        decoded = sum(sum(a.ok.values()) for a in self.people.values())
        self.claim(
            f"every one of {decoded} decrypted frames decoded to exactly what was sent",
            mismatched == 0 and decoded > 0,
        )
        return self._result()

    def _verify_audit(self) -> tuple[bool, int]:
        assert self.services is not None
        keys = ServiceKeys.load_or_create(self.services.secrets)
        db = open_database(self.services.database_url)
        try:
            with db.transaction() as tx:
                rows = tx.all("SELECT * FROM audit ORDER BY seq")
                head = tx.one("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        finally:
            db.close()
        assert head is not None
        report = audit_module.verify_chain(rows, head, keys.signing_key.verifying_key)
        return report.ok, report.entries

    async def _browser_joins(self) -> None:
        """ivy joins from a browser, approved from her laptop."""
        web, s = self.web, self.services
        assert web is not None
        assert s is not None
        laptop = self.client(WEB_NAME)
        await laptop.initialize()
        joined = await web.join(
            s,
            self.config,
            laptop,
            self.say,
            retries=",".join(str(d) for d in TIMING.join_retry_delays),
            switch=0.3,
        )
        self._tasks.append(asyncio.create_task(web.follow(self.t0, self.events)))
        if joined:
            await web.refresh()
        self.claim(
            f"{WEB_NAME}'s browser became a device of {WEB_NAME} (approved from her laptop) and "
            f"joined at epoch {web.state.get('snapshot', {}).get('epoch')}",
            joined,
        )

    async def _browser_claims(self, epoch: int, everyone: list[str]) -> None:
        """What the browser decoded, what the others decoded of it, its security code."""
        web = self.web
        assert web is not None
        await web.browser.eventually(
            f"window.sealroom.snapshot && window.sealroom.snapshot.epoch === {epoch}", PATIENCE
        )
        decoded = {name: dict(frames) for name, frames in web.decoded.items()}
        await web.refresh()
        self.screenshot = await web.browser.screenshot(self._screenshot_path())
        good, bad, senders = web.decoded_ok(self.tracks)
        self.claim(
            f"{WEB_NAME}'s browser decoded {good} video frames from {', '.join(senders)} to "
            "exactly what they sent, and heard each one's tone at its frequency",
            good > 0
            and bad == 0
            and set(senders) >= set(everyone)
            and web.tones_ok({n: self.tracks[n].seed for n in everyone}),
        )
        receivers, ok, wrong = web.others_decoded_ok(decoded)
        self.claim(
            f"{receivers} participants decoded {ok} frames of {WEB_NAME}'s browser video to "
            "exactly what it sent",
            receivers >= 2 and ok > 0 and wrong == 0,
        )
        code = web.state.get("snapshot", {}).get("code")
        codes = {self._code(n) for n in everyone}
        self.claim(
            f"{WEB_NAME}'s browser shows the same security code as {', '.join(everyone)}: {code}",
            code is not None and codes == {code},
        )
        self.say(f"a screenshot of {WEB_NAME}'s page: {self.screenshot}")

    def _code(self, name: str) -> str | None:
        mc = self.people[name].mc
        return None if mc is None else mc.security_code()

    async def _browser_ended(self) -> None:
        web = self.web
        assert web is not None
        ended = await web.browser.eventually("window.sealroom.phase === 'ended'", PATIENCE)
        await web.refresh()
        self.claim(
            f"{WEB_NAME}'s browser shows that the meeting ended, holds no media key and "
            "forgot its device keys",
            ended
            and web.report.get("epochs") == []
            and any(e["kind"] == "device_forgotten" for e in web.state.get("events", [])),
        )

    def _screenshot_path(self) -> Path:
        base = self.picture or Path("demo-timeline.png")
        return base.with_name(base.stem.replace("timeline", "") + "browser.png")

    def _result(self) -> DemoResult:
        epochs = sorted({e for a in self.people.values() for e in (*a.ok, *a.refused) if e >= 0})
        table: dict[str, dict[int, str]] = {}
        for name, a in self.people.items():
            row = {}
            for e in epochs:
                if a.ok.get(e):
                    row[e] = f"decrypted {a.ok[e]}"
                elif a.refused.get(e):
                    row[e] = f"REFUSED {a.refused[e]}"
                else:
                    row[e] = "-"
            table[name] = row
        if self.web is not None:
            table[self.web.label] = self.web.table_row(epochs)
        picture = self._draw(epochs) if self.picture else None
        return DemoResult(
            all(h for _, h in self.claims),
            self.claims,
            table,
            self.events,
            picture,
            time.monotonic() - self.t0,
            self.screenshot,
        )

    def _draw(self, epochs: list[int]) -> Path | None:
        assert self.picture is not None
        rows = list(self.people) + ([self.web.label] if self.web is not None else [])
        draw(self.picture, self.events, rows, self.people)
        return self.picture


def print_result(result: DemoResult, out: TextIO) -> None:
    epochs = sorted({e for row in result.table.values() for e in row})
    print("\nparticipants x epochs (frames each one decrypted, or refused):", file=out)
    width = max(6, *(len(n) for n in result.table))
    header = f"  {'':<{width}}" + "".join(f"{'epoch ' + str(e):>16}" for e in epochs)
    print(header, file=out)
    for name, row in result.table.items():
        print(f"  {name:<{width}}" + "".join(f"{row[e]:>16}" for e in epochs), file=out)
    print("\nkey events:", file=out)
    for t, who, kind, detail in result.events:
        if kind in (
            "rekeyed",
            "key_installed",
            "joined",
            "manager",
            "participant_left",
            "ended",
            "device_rotated",
        ):
            extra = ", ".join(f"{k}={v}" for k, v in detail.items())
            print(f"  {t:6.2f}s  {who:<5} {kind:<16} {extra}", file=out)
    print(
        f"\n{sum(h for _, h in result.claims)}/{len(result.claims)} security claims held; "
        f"{result.seconds:.0f} s",
        file=out,
    )
    if result.picture:
        print(f"timeline: {result.picture}", file=out)
    if result.screenshot:
        print(f"browser participant's page: {result.screenshot}", file=out)


def run_demo(
    out: TextIO,
    *,
    participants: int = 5,
    data_dir: Path | None = None,
    picture: Path | None = Path("demo-timeline.png"),
    browser: bool = False,
) -> DemoResult:
    if not 3 <= participants <= len(NAMES):
        raise ValueError(f"participants must be between 3 and {len(NAMES)}")
    with tempfile.TemporaryDirectory(prefix="sealroom-demo-") as tmp:
        base = data_dir or Path(tmp)
        result = asyncio.run(Demo(out, participants, base, picture, browser).run())
    print_result(result, out)
    return result
