"""SFrame throughput against raw AES-GCM, and the relay's forwarding rate (issue 4).

For 100 B, 1,200 B and 64 KiB frames it times one SFrame encrypt plus one decrypt (a
:class:`~sealroom.media.keys.Sender` and a :class:`~sealroom.media.keys.Receiver` with its
replay window), and the same with pyca/cryptography's AESGCM directly (a counter nonce per
frame, the same associated data). Rounds alternate between the two so machine noise hits
both; the figure is raw time / SFrame time.

Then it starts the conferencing service on 127.0.0.1 (in-process bus) with the development
IdP, connects 10 sending and 10 receiving WebSocket clients to one meeting, has every sender
push 1,200-byte SFrame frames as fast as the relay takes them, and counts the frames the
receivers get per second. Clients and server share this 2-core machine.

    .venv/bin/python bench/media.py [--seconds 1.0] [--relay-seconds 5]
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
    parser.add_argument("--relay-seconds", type=float, default=5.0)
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
    relay(args.relay_seconds)
    return 0


async def _relay_load(
    conf: str, idp: str, seconds: float, senders: int, receivers: int
) -> tuple[int, int, float]:
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
    sent = received = 0
    stop = time.monotonic() + seconds

    async def send(ws: object) -> None:
        nonlocal sent
        while time.monotonic() < stop:
            await ws.send(frame)  # type: ignore[attr-defined]
            sent += 1
            await asyncio.sleep(0)

    async def recv(ws: object) -> None:
        nonlocal received
        while time.monotonic() < stop + 0.5:
            try:
                await asyncio.wait_for(ws.recv(), 0.5)  # type: ignore[attr-defined]
                received += 1
            except TimeoutError:
                continue

    start = time.monotonic()
    await asyncio.gather(
        *(send(w) for w in out), *(recv(w) for w in inn), *(recv(w) for w in out)
    )  # senders read the others' frames too
    elapsed = time.monotonic() - start
    for w in [*out, *inn]:
        await w.close()  # type: ignore[attr-defined]
    return sent, received, elapsed


def relay(seconds: float, senders: int = 10, receivers: int = 10) -> None:
    with tempfile.TemporaryDirectory() as d:
        services = Services(Path(d))
        try:
            print(
                f"relay: {senders} senders x {receivers} receivers, 1,200 B frames, "
                f"{seconds:.0f} s ...",
                file=sys.stderr,
                flush=True,
            )
            sent, received, elapsed = asyncio.run(
                _relay_load(services.conf, services.idp, seconds, senders, receivers)
            )
        finally:
            services.stop()
    fanout = senders - 1 + receivers
    print(
        f"relay: {sent / elapsed:,.0f} frames/s in; {received / elapsed:,.0f} frames/s "
        f"forwarded ({received * 1200 * 8 / elapsed / 1e6:,.0f} Mbit/s), "
        f"{received / max(sent * fanout, 1):.0%} of the {fanout}-way fan-out (media is lossy: "
        "frames for a slow receiver are dropped, never queued without bound)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
