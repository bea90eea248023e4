"""The browser participant's figures (issue 12), in Debian's headless Chromium.

1. **Time to first frame**: from opening the meeting page to the first video frame it
   decoded, with a Python participant sending; split into its steps (page loaded and
   approval code shown, device approved by the user's laptop, key installed, first frame).
   Each run uses a new user; the laptop approves as soon as the code appears. Runs for the
   approval path and for the escrow path (Argon2id at its default cost in the page).
2. **SFrame decrypt throughput in the page** at 1,200-byte frames: the web client's
   Receiver (header parsing, replay window, AES-128-GCM on WebCrypto) against WebCrypto's
   AES-GCM alone on the same frames, one frame at a time, rounds alternating, in the same
   page and run. The figure is SFrame frames/s and its fraction of the raw rate.
3. **CPU while receiving**: four Python participants each send 30 fps VP8 video (320x240)
   and Opus audio; the page receives only (no camera) and decodes and draws all of it.
   The figure is the CPU time of every Chromium process of the page (browser, renderer with
   its media Worker, GPU and utility processes) over a window, as a share of one core,
   with the frames per second the page actually decoded (the senders loop over two
   seconds of pre-encoded frames, so that they keep up).

    .venv/bin/python bench/web.py [--runs 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sealroom.demo.browser import BrowserParticipant, page_url, unavailable
from sealroom.demo.media import Track
from sealroom.demo.services import Services
from sealroom.demo.web_attendee import web_root
from sealroom.media.payload import Packet, pack
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk import BasicSplitTrust, Client
from sealroom.sdk.meeting import MeetingClient

TIMING = Timing(join_retry_delays=(0.2, 0.5, 1.0, 1.0), leave_debounce=0.5, ratchet_interval=600)
TICKS = os.sysconf("SC_CLK_TCK")

_THROUGHPUT = """async ([frames, size, rounds]) => {
  const { Receiver, Sender } = await import('./src/media/keys.js');
  const { decodeHeader } = await import('./src/media/sframe.js');
  const sk = crypto.getRandomValues(new Uint8Array(32));
  const sender = await Sender.create(sk, 1, 0);
  const payload = crypto.getRandomValues(new Uint8Array(size));
  const sealed = [];
  const none = new Uint8Array(0);
  for (let i = 0; i < frames * rounds; i++) sealed.push(await sender.encrypt(none, payload));
  // The raw baseline: the same ciphertexts (header as AAD), AES-GCM alone on WebCrypto.
  const key = crypto.getRandomValues(new Uint8Array(16));
  const raw = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
  const plain = [];
  for (let i = 0; i < frames; i++) {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setUint32(8, i);
    const aad = sealed[i].subarray(0, decodeHeader(sealed[i]).length);
    const gcm = { name: 'AES-GCM', iv, additionalData: aad };
    plain.push([gcm, new Uint8Array(await crypto.subtle.encrypt(gcm, raw, payload))]);
  }
  const receiver = new Receiver({ window: 4096 });
  receiver.install(1, sk, 0);
  const sframe = [];
  const webcrypto = [];
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    for (let i = r * frames; i < (r + 1) * frames; i++) await receiver.decrypt(none, sealed[i], 0);
    sframe.push(frames / ((performance.now() - t) / 1000));
    t = performance.now();
    for (const [gcm, ct] of plain) await crypto.subtle.decrypt(gcm, raw, ct);
    webcrypto.push(frames / ((performance.now() - t) / 1000));
  }
  return { sframe, webcrypto };
}"""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Participant:
    """A Python participant of the benchmark's meeting, sending a test pattern."""

    def __init__(self, services: Services, tmp: Path, user: str, config: MeetingConfig) -> None:
        self.user, self.services, self.config = user, services, config
        self.sdk = Client(
            services.ks,
            jwt=lambda audience: services.token(user, audience),
            secret=BasicSplitTrust(lambda: services.provider_half(user)),
            keystore=tmp / user / "device.json",
        )
        self.mc: MeetingClient | None = None
        self.sent = 0

    async def enter(self, *, start: bool = False) -> MeetingClient:
        await self.sdk.initialize()
        self.mc = MeetingClient(
            self.sdk,
            self.services.conf,
            self.config,
            token=lambda audience: self.services.token(self.user, audience),
            queue_events=False,  # nobody reads them here
            timing=TIMING,
            switch_delay=0.2,
        )
        await (self.mc.start() if start else self.mc.join())
        return self.mc

    async def send(self, track: Track, fps: float, audio: bool = True) -> None:
        """Video at ``fps`` and 20 ms audio packets, paced by the clock. The track's first
        two seconds are encoded up front and then sent in a loop with rising indices (every
        video frame is a key frame, so each decodes on its own): the senders' Python then
        only encrypts and sends, and keeps up with 4 x 30 fps on this machine. Like a
        camera, a sender that fell behind skips what it missed rather than bursting."""
        assert self.mc is not None
        video = [track.video()[0].data for _ in range(int(2 * fps))]
        sound = [track.audio()[0].data for _ in range(100)]
        start = time.monotonic()
        n_video = n_audio = 0
        while True:
            now = time.monotonic() - start
            packets: list[Packet] = []
            n_video = max(n_video, int(now * fps) - 1)
            n_audio = max(n_audio, int(now * 50) - 1)
            while n_video <= now * fps:
                packets.append(Packet("video", n_video, video[n_video % len(video)]))
                n_video += 1
            while audio and n_audio <= now * 50:
                packets.append(Packet("audio", n_audio, sound[n_audio % len(sound)]))
                n_audio += 1
            for p in packets:
                if await self.mc.publish(pack(p)):
                    self.sent += 1
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        if self.mc is not None:
            await self.mc.close()
        await self.sdk.aclose()


def _tree_cpu(root_marker: str) -> float:
    """CPU seconds used so far by the Chromium processes of one profile (its browser
    process, found by its --user-data-dir, and every descendant)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    roots: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
        if root_marker.encode() in cmd and b"--type=" not in cmd:
            roots.append(pid)
    total = 0.0
    for pid, seconds in cpu.items():
        p = pid
        while p > 1:
            if p in roots:
                total += seconds
                break
            p = parents.get(p, 0)
    return total


async def _meeting(
    services: Services, tmp: Path, name: str, senders: int
) -> tuple[MeetingConfig, list[Participant]]:
    users = [f"{name}-s{i}" for i in range(senders)]
    config = MeetingConfig(name, host=users[0], invitees=(*users[1:], f"{name}-web"))
    people = [Participant(services, tmp, u, config) for u in users]
    await people[0].enter(start=True)
    for p in people[1:]:
        await p.enter()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        epochs = {p.mc.session.epoch for p in people if p.mc is not None}
        if len(epochs) == 1 and None not in epochs and epochs.pop() == senders - 1:
            break
        await asyncio.sleep(0.1)
    return config, people


async def first_frame(services: Services, tmp: Path, run: int, mode: str) -> dict[str, float]:
    """One page, from opening to its first decoded frame, with one Python sender."""
    name = f"ttf-{mode}-{run}"
    config, people = await _meeting(services, tmp, name, 1)
    web_user = f"{name}-web"
    laptop = Client(
        services.ks,
        jwt=lambda audience: services.token(web_user, audience),
        secret=BasicSplitTrust(lambda: services.provider_half(web_user)),
        keystore=tmp / web_user / "laptop.json",
    )
    await laptop.initialize()
    sending = asyncio.create_task(people[0].send(Track(1, remember=False), 15))
    page = BrowserParticipant()
    try:
        await page.start()
        url = page_url(
            services.ks,
            conference=services.conf,
            idp=services.idp,
            meeting=name,
            host=config.host,
            invitees=config.invitees,
            user=web_user,
            mode=mode,
            extra={"send": "0", "retries": "0.2,0.5,1,1"},
        )
        opened = time.monotonic()
        await page.open(url)
        steps: dict[str, float] = {}
        if mode == "approval":
            payload = await page.approval_payload()
            steps["approval code shown"] = time.monotonic() - opened
            await laptop.approve_device(payload)
        await page.wait_for("window.sealroom && window.sealroom.firstFrameAt !== null", 120)
        state = await page.state()
        events = {e["kind"]: float(e["at"]) for e in reversed(state["events"])}
        origin = 0.0  # the page's clock starts at navigation
        if mode == "approval":
            steps["device approved"] = (events["device_approved"] - origin) / 1000
        else:
            steps["escrow opened, device registered"] = (
                events["device_registered"] - origin
            ) / 1000
        steps["key installed"] = (events["key_installed"] - origin) / 1000
        steps["first frame decoded"] = (float(state["firstFrameAt"]) - origin) / 1000
        return steps
    finally:
        sending.cancel()
        await page.close()
        await laptop.aclose()
        for p in people:
            await p.close()


async def cpu_receiving(services: Services, tmp: Path, seconds: float) -> dict[str, float]:
    """The page's CPU while it receives four participants' 30 fps video."""
    config, people = await _meeting(services, tmp, "cpu", 4)
    web_user = "cpu-web"
    laptop = Client(
        services.ks,
        jwt=lambda audience: services.token(web_user, audience),
        secret=BasicSplitTrust(lambda: services.provider_half(web_user)),
        keystore=tmp / web_user / "laptop.json",
    )
    await laptop.initialize()
    tasks = [
        asyncio.create_task(p.send(Track(i + 1, width=320, height=240, remember=False), 30))
        for i, p in enumerate(people)
    ]
    page = BrowserParticipant()
    try:
        await page.start()
        await page.open(
            page_url(
                services.ks,
                conference=services.conf,
                idp=services.idp,
                meeting="cpu",
                host=config.host,
                invitees=config.invitees,
                user=web_user,
                extra={"send": "0", "retries": "0.2,0.5,1,1"},
            )
        )
        await laptop.approve_device(await page.approval_payload())
        await page.wait_for(
            "Object.keys(window.sealroom.frames).length === 4 && "
            "Object.values(window.sealroom.frames).every((n) => n > 30)",
            120,
        )
        await asyncio.sleep(2.0)  # settle
        marker = str(page._profile)
        frames0 = sum((await page.state())["frames"].values())
        sent0 = sum(p.sent for p in people)
        cpu0, t0 = _tree_cpu(marker), time.monotonic()
        for i in range(int(seconds)):
            await asyncio.sleep(1.0)
            print(f"  measuring ... {i + 1}/{int(seconds)} s", end="\r", flush=True)
        print()
        cpu1, t1 = _tree_cpu(marker), time.monotonic()
        frames1 = sum((await page.state())["frames"].values())
        sent1 = sum(p.sent for p in people)
        wall = t1 - t0
        return {
            "share": (cpu1 - cpu0) / wall,
            "decoded_fps": (frames1 - frames0) / wall,
            "sent_per_s": (sent1 - sent0) / wall,
        }
    finally:
        for t in tasks:
            t.cancel()
        await page.close()
        await laptop.aclose()
        for p in people:
            await p.close()


async def throughput(services: Services, size: int, frames: int, rounds: int) -> dict[str, Any]:
    page = BrowserParticipant()
    try:
        await page.start()
        await page.open(f"{services.ks}/web/index.html")
        await page.wait_for("document.body.dataset.status", 60)
        result: dict[str, Any] = await page.page.evaluate(_THROUGHPUT, [frames, size, rounds])
        return result
    finally:
        await page.close()


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sealroom-bench-web-"))
    services = Services(tmp, web_root=web_root())
    try:
        print("1. time from opening the page to its first decoded frame (one Python sender)")
        for mode in ("approval", "escrow"):
            runs = []
            for run in range(args.runs):
                runs.append(await first_frame(services, tmp, run, mode))
                took = runs[-1]["first frame decoded"]
                print(f"  {mode} run {run + 1}/{args.runs}: {took:.2f} s")
            print(f"  {mode} path, median of {args.runs} runs (seconds since the page opened):")
            for step in runs[0]:
                print(f"    {step:<36}{median([r[step] for r in runs]):8.2f}")

        print(f"\n2. SFrame decrypt in the page, {args.size}-byte frames, one at a time")
        result = await throughput(services, args.size, args.frames, args.rounds)
        sframe, raw = median(result["sframe"]), median(result["webcrypto"])
        ratios = [s / r for s, r in zip(result["sframe"], result["webcrypto"], strict=True)]
        print(f"  {'SFrame (Receiver, suite 4)':<36}{sframe:10.0f} frames/s")
        print(f"  {'WebCrypto AES-GCM alone':<36}{raw:10.0f} frames/s")
        print(
            f"  SFrame / raw: {median(ratios):.2f} "
            f"(median of {args.rounds} alternating rounds of {args.frames} frames)"
        )

        print("\n3. the page receiving 4 participants' 30 fps 320x240 VP8 video (+ Opus audio)")
        cpu = await cpu_receiving(services, tmp, args.seconds)
        print(
            f"  Chromium CPU: {cpu['share'] * 100:.0f}% of one core "
            f"(all of the page's processes, over {args.seconds:.0f} s)"
        )
        print(
            f"  decoded {cpu['decoded_fps']:.1f} video frames/s; the senders sent "
            f"{cpu['sent_per_s']:.0f} frames/s (video and audio)"
        )
        print(f"  machine: {os.cpu_count()} cores, shared with the services and the senders")
    finally:
        services.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU measuring window")
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    reason = unavailable() or (None if web_root() else "the web client (web/) is not here")
    if reason is not None:
        print(f"bench/web.py: skipped, no figures: {reason}", file=sys.stderr)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
