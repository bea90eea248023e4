"""Real brokers for tests: Redis and NATS JetStream on 127.0.0.1, each test on a fresh key
prefix or stream that is removed afterwards; skipped with the reason when a server is
missing, never faked."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sealroom.conference.bus import Bus, InProcessBus, NatsBus, RedisBus

PORTS = {"redis": 6379, "nats": 4222}


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def fresh_prefix(kind: str) -> Iterator[str]:
    """A key prefix (Redis) or stream (NATS) of its own, deleted afterwards."""
    prefix = f"srtest{uuid.uuid4().hex[:10]}"
    if kind == "inprocess":
        yield prefix
        return
    if not reachable(PORTS[kind]):
        pytest.skip(f"{kind} not reachable on 127.0.0.1:{PORTS[kind]}")
    try:
        yield prefix
    finally:
        if kind == "redis":
            import redis

            r = redis.Redis()
            for key in r.scan_iter(f"{prefix}:*"):
                r.delete(key)
            r.close()
        else:

            async def drop() -> None:
                bus = NatsBus(prefix=prefix)
                with contextlib.suppress(Exception):  # no stream if nothing was posted
                    await bus.delete_stream()
                await bus.close()

            asyncio.run(drop())


def make_bus(kind: str, prefix: str, **options: Any) -> Bus:
    """A bus of ``kind``; two made with one prefix share a board, as two service processes do."""
    if kind == "redis":
        return RedisBus(prefix=prefix, **options)
    if kind == "nats":
        return NatsBus(prefix=prefix, **options)
    return InProcessBus(**options)
