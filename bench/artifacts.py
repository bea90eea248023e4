"""Streaming a 1 GiB artifact stays flat in memory (issue 5).

Seals 1 GiB of generated data as a chunked stream to one recipient and opens it again,
chained in one process with nothing kept: source → seal → open → sink. It prints the
throughput of each side and the process's peak resident memory (ru_maxrss), which must stay
under 200 MiB.

    .venv/bin/python bench/artifacts.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import threading
import time
from typing import BinaryIO

from sealroom.crypto.pre import decrypt, generate_key_pair
from sealroom.crypto.signing import SigningKey
from sealroom.crypto.stream import open_stream, read_header, seal_stream


class Source(io.RawIOBase):
    """``size`` bytes of non-repeating data, produced on demand, with a progress line."""

    def __init__(self, size: int) -> None:
        self.left, self.size = size, size
        self._block = os.urandom(1 << 20)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, len(self._block))
        buffer[:n] = self._block[:n]
        self.left -= n
        done = self.size - self.left
        if done % (64 << 20) < n:
            print(f"\r  sealed {done >> 20:>5} MiB", end="", file=sys.stderr, flush=True)
        return n


class Pipe(io.RawIOBase):
    """A bounded in-memory pipe between the sealing and the opening threads."""

    def __init__(self, capacity: int = 4 << 20) -> None:
        self._buf = bytearray()
        self._cap = capacity
        self._closed = False
        self._cv = threading.Condition()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        with self._cv:
            while len(self._buf) > self._cap:
                self._cv.wait()
            self._buf += data
            self._cv.notify_all()
        return len(data)

    def finish(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def read(self, n: int = -1) -> bytes:
        with self._cv:
            while not self._buf and not self._closed:
                self._cv.wait()
            n = len(self._buf) if n < 0 else min(n, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            self._cv.notify_all()
            return out


class Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args(argv)
    size = args.mib << 20
    signer = SigningKey.generate()
    priv, pub = generate_key_pair()
    pipe, sink = Pipe(), Sink()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            seal_stream(Source(size), pipe, b"recording-1", [pub], signer)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)
        finally:
            pipe.finish()

    start = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    src: BinaryIO = pipe  # type: ignore[assignment]
    head, raw = read_header(src)
    source = decrypt(head.edeks[0], priv, origin_signer=signer.verifying_key)
    written = open_stream(src, sink, (head, raw), source, sealer=signer.verifying_key)  # type: ignore[arg-type]
    producer.join()
    elapsed = time.perf_counter() - start
    print(file=sys.stderr)
    if errors:
        raise errors[0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert written == size == sink.count
    print(
        f"streamed {size >> 20} MiB sealed and opened in {elapsed:.1f} s "
        f"({size / elapsed / 1e6:.0f} MB/s through both), 64 KiB chunks"
    )
    print(
        f"peak resident memory: {peak_mib:.0f} MiB "
        f"({'under' if peak_mib < 200 else 'OVER'} the 200 MiB bound)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
