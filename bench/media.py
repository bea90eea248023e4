"""SFrame throughput against raw AES-GCM from the same library, in the same run (issue 4).

For 100 B, 1,200 B and 64 KiB frames it times one SFrame encrypt plus one decrypt (a
:class:`~sealroom.media.keys.Sender` and a :class:`~sealroom.media.keys.Receiver` with its
replay window), and the same with pyca/cryptography's AESGCM directly (a counter nonce per
frame, the same associated data). Rounds alternate between the two so machine noise hits
both; the figure is raw time / SFrame time.

    .venv/bin/python bench/media.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.media.keys import Receiver, Sender

SIZES = (100, 1200, 64 * 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per size and method")
    parser.add_argument("--rounds", type=int, default=20)
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
    print("(the relay forwarding rate is not measured yet: the relay is not built)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
