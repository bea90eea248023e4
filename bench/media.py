"""SFrame throughput against raw AES-GCM, and the relay's forwarding rate (issue 4).

For 100 B, 1,200 B and 64 KiB frames it times one SFrame encrypt plus one decrypt (a
:class:`~sealroom.media.keys.Sender` and a :class:`~sealroom.media.keys.Receiver` with its
replay window), and the same with pyca/cryptography's AESGCM directly (a counter nonce per
frame, the same associated data). Rounds alternate between the two so machine noise hits
both; the figure is raw time / SFrame time.

Then it starts the conferencing service on 127.0.0.1 (in-process bus) with the development
IdP, connects 10 sending and 10 receiving WebSocket clients to one meeting, and steps the
offered load up: the senders pace 1,200-byte SFrame frames at a total rate per step (then
flood), and every other client counts what it gets. Each row prints frames in, frames
forwarded per second, the share of the fan-out delivered and the client process's CPU;
the curve goes to bench/out/relay.png. Clients and server share this 2-core machine, so
the client process competes with the relay for CPU.

    .venv/bin/python bench/media.py [--seconds 1.0] [--relay-seconds 2] [--out bench/out]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.conference.app import AUDIENCE
from sealroom.demo.services import Services
from sealroom.media.keys import Receiver, Sender

SIZES = (100, 1200, 64 * 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per size and method")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--relay-seconds", type=float, default=2.0, help="per load step")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)
    session_key = os.urandom(32)
    metadata = b"stream-7"
    print(
        f"SFrame (suite 4, AES-128-GCM) vs raw AES-GCM, encrypt + decrypt, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'frame':>8}{'SFrame MB/s':>14}{'raw MB/s':>11}{'fraction':>10}")
    for size in SIZES:
        payload = os.urandom(size)
        sender = Sender(session_key, 1, 0, max_frames=1 << 62)
        receiver = Receiver(window=128)
        receiver.install(1, session_key, now=0.0)
        gcm = AESGCM(os.urandom(16))
        per_round = max(1, int(args.seconds / args.rounds / (2e-6 + size / 1e9)))
        ctr = 0
        sframe_t, raw_t = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(per_round):
                receiver.decrypt(metadata, sender.encrypt(metadata, payload), 0.0)
            sframe_t.append((time.perf_counter() - start) / per_round)
            start = time.perf_counter()
            for _ in range(per_round):
                nonce = ctr.to_bytes(12, "big")
                ctr += 1
                gcm.decrypt(nonce, gcm.encrypt(nonce, payload, metadata), metadata)
            raw_t.append((time.perf_counter() - start) / per_round)
        s, r = statistics.median(sframe_t), statistics.median(raw_t)
        print(f"{size:>8}{size / s / 1e6:>14.1f}{size / r / 1e6:>11.1f}{r / s:>10.0%}")
    relay(args.relay_seconds, args.out)
    return 0


# Offered load per step, in frames per second summed over all senders; None = flood.
STEPS: tuple[float | None, ...] = (400, 800, 1600, 2400, 3200, 4000, 4800, None)


class _Counter:
    def __init__(self) -> None:
        self.sent = self.received = 0


async def _relay_sweep(
    conf: str, idp: str, seconds: float, senders: int, receivers: int
) -> list[dict[str, float]]:
    url = conf.replace("http", "ws", 1) + "/v1/meetings/bench/channel"

    def token(user: str) -> str:
        r = httpx.post(f"{idp}/v1/token", json={"user_id": user, "audience": AUDIENCE})
        return str(r.json()["token"])

    def connect(user: str) -> object:
        return websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token(user)}"}, max_size=1 << 20
        )

    out = [await connect(f"s{i}") for i in range(senders)]  # type: ignore[misc]
    inn = [await connect(f"r{i}") for i in range(receivers)]  # type: ignore[misc]
    await asyncio.sleep(0.3)
    frame = Sender(os.urandom(32), 1, 0).encrypt(b"", os.urandom(1200))
    count = _Counter()
    closing = asyncio.Event()

    async def recv(ws: object) -> None:
        while not closing.is_set():
            try:
                await asyncio.wait_for(ws.recv(), 0.2)  # type: ignore[attr-defined]
                count.received += 1
            except TimeoutError:
                continue

    async def send(ws: object, rate: float | None, stop: float) -> None:
        interval = senders / rate if rate else 0.0
        due = time.monotonic()
        while (now := time.monotonic()) < stop:
            if interval:
                due += interval
                await asyncio.sleep(max(0.0, due - now))
            else:
                await asyncio.sleep(0)
            await ws.send(frame)  # type: ignore[attr-defined]
            count.sent += 1

    readers = [asyncio.create_task(recv(w)) for w in [*inn, *out]]  # senders read too
    rows = []
    for i, rate in enumerate(STEPS, 1):
        label = "flood" if rate is None else f"{rate:.0f}/s"
        print(f"\r  step {i}/{len(STEPS)}: offered {label:<8}", end="", file=sys.stderr, flush=True)
        sent0, recv0, cpu0 = count.sent, count.received, time.process_time()
        start = time.monotonic()
        await asyncio.gather(*(send(w, rate, start + seconds) for w in out))
        await asyncio.sleep(0.5)  # let the relay's queues drain into this step
        elapsed = time.monotonic() - start
        sent, received = count.sent - sent0, count.received - recv0
        rows.append(
            {
                "offered": rate or 0.0,
                "in": sent / seconds,
                "forwarded": received / seconds,
                "delivered": received / max(sent * (senders - 1 + receivers), 1),
                "client_cpu": (time.process_time() - cpu0) / elapsed,
            }
        )
    print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    closing.set()
    await asyncio.gather(*readers)
    for w in [*out, *inn]:
        await w.close()  # type: ignore[attr-defined]
    return rows


def relay(seconds: float, out_dir: Path, senders: int = 10, receivers: int = 10) -> None:
    fanout = senders - 1 + receivers
    with tempfile.TemporaryDirectory() as d:
        services = Services(Path(d))
        try:
            print(
                f"relay: {senders} senders x {receivers} receivers (each frame goes to "
                f"{fanout} others), 1,200 B frames, {seconds:.0f} s per step",
                flush=True,
            )
            rows = asyncio.run(
                _relay_sweep(services.conf, services.idp, seconds, senders, receivers)
            )
        finally:
            services.stop()
    print(
        f"{'offered in/s':>13}{'sent in/s':>11}{'forwarded/s':>13}{'delivered':>11}"
        f"{'client CPU':>12}"
    )
    for r in rows:
        offered = "flood" if not r["offered"] else f"{r['offered']:.0f}"
        print(
            f"{offered:>13}{r['in']:>11,.0f}{r['forwarded']:>13,.0f}{r['delivered']:>11.1%}"
            f"{r['client_cpu']:>12.0%}"
        )
    lossless = [r for r in rows if r["offered"] and r["delivered"] >= 0.99]
    best = max(rows, key=lambda r: r["forwarded"])
    if lossless:
        top = max(lossless, key=lambda r: r["forwarded"])
        print(
            f"relay capacity with >=99% delivered: {top['forwarded']:,.0f} frames/s forwarded "
            f"({top['forwarded'] * 1200 * 8 / 1e6:,.0f} Mbit/s)"
        )
    print(
        f"relay peak: {best['forwarded']:,.0f} frames/s forwarded "
        f"({best['forwarded'] * 1200 * 8 / 1e6:,.0f} Mbit/s); media is lossy: frames for a "
        "slow receiver are dropped, never queued without bound"
    )
    picture(rows, fanout, out_dir / "relay.png")


def picture(rows: list[dict[str, float]], fanout: int, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no picture)")
        return
    paced = [r for r in rows if r["offered"]]
    xs = [r["in"] * fanout for r in paced]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(xs, xs, linestyle=":", color="grey", label="every frame delivered")
    ax.plot(xs, [r["forwarded"] for r in paced], marker="o", label="forwarded")
    flood = [r for r in rows if not r["offered"]]
    if flood:
        ax.axhline(flood[0]["forwarded"], color="tab:red", linestyle="--", label="flood")
    ax.set_xlabel("frames/s the fan-out asks for (sent x others)")
    ax.set_ylabel("frames/s forwarded")
    ax.set_title("SFrame relay, 10 senders x 10 receivers, 1,200 B, loopback")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"picture: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
