"""Where a meeting's board messages and media frames travel between service processes.

* :class:`InProcessBus`: the default; one process.
* :class:`RedisBus`: board messages in a Redis Stream per meeting (kept, so late joiners
  read them), media over Redis pub/sub (live only).
* :class:`NatsBus`: board messages in a JetStream stream, media over core NATS subjects.

With Redis or NATS, several service processes can serve one meeting. Board history is kept
for ``retention_seconds`` (the life of a meeting), then expires.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import nats
import redis.asyncio as redis
from nats.js.api import StreamConfig

__all__ = ["Bus", "InProcessBus", "NatsBus", "RedisBus"]

MEDIA_QUEUE: Final[int] = 256  # frames a slow receiver may fall behind before drops
MAX_HISTORY: Final[int] = 10_000  # board messages kept per meeting


class Bus(Protocol):
    async def post(self, meeting: str, message: str) -> None:
        """Append a board message (JSON text) to the meeting's history and deliver it."""
        ...

    def board(self, meeting: str) -> AsyncIterator[str]:
        """Every board message of the meeting: the history first, then live ones."""
        ...

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None: ...

    def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Live media frames of the meeting, as (sending connection, frame). ``ready`` is
        set once the subscription is live: every frame sent after that is delivered."""
        ...

    async def close(self) -> None: ...


class InProcessBus:
    """One process, one event loop: the queues it hands out are not thread-safe, so a
    second loop (another thread) would hang waiting for wake-ups that never come; it is
    refused with :class:`RuntimeError` instead."""

    def __init__(self) -> None:
        self._history: dict[str, list[str]] = {}
        self._board_subs: dict[str, set[asyncio.Queue[str]]] = {}
        self._media_subs: dict[str, set[asyncio.Queue[tuple[str, bytes]]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("InProcessBus serves one event loop; use one per loop")

    async def post(self, meeting: str, message: str) -> None:
        self._same_loop()
        history = self._history.setdefault(meeting, [])
        if len(history) >= MAX_HISTORY:
            raise OverflowError("this meeting's board is full")
        history.append(message)
        for q in self._board_subs.get(meeting, set()):
            q.put_nowait(message)

    async def board(self, meeting: str) -> AsyncIterator[str]:
        self._same_loop()
        q: asyncio.Queue[str] = asyncio.Queue()
        for m in self._history.get(meeting, []):
            q.put_nowait(m)
        self._board_subs.setdefault(meeting, set()).add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._board_subs[meeting].discard(q)

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        self._same_loop()
        for q in self._media_subs.get(meeting, set()):
            with contextlib.suppress(asyncio.QueueFull):  # media is lossy: drop, never block
                q.put_nowait((sender, frame))

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        self._same_loop()
        q: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(MEDIA_QUEUE)
        self._media_subs.setdefault(meeting, set()).add(q)
        if ready is not None:
            ready.set()
        try:
            while True:
                yield await q.get()
        finally:
            self._media_subs[meeting].discard(q)

    async def close(self) -> None:
        return None


def _pack(sender: str, frame: bytes) -> bytes:
    raw = sender.encode()
    return bytes((len(raw),)) + raw + frame


def _unpack(data: bytes) -> tuple[str, bytes]:
    n = data[0]
    return data[1 : 1 + n].decode(), data[1 + n :]


class RedisBus:
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        prefix: str = "sealroom",
        retention_seconds: int = 86400,
    ) -> None:
        self._redis: Any = redis.from_url(url)
        self._prefix, self._ttl = prefix, retention_seconds

    def _board_key(self, meeting: str) -> str:
        return f"{self._prefix}:board:{meeting}"

    async def post(self, meeting: str, message: str) -> None:
        key = self._board_key(meeting)
        if await self._redis.xlen(key) >= MAX_HISTORY:
            raise OverflowError("this meeting's board is full")
        await self._redis.xadd(key, {"m": message})
        await self._redis.expire(key, self._ttl)

    async def board(self, meeting: str) -> AsyncIterator[str]:
        key, last = self._board_key(meeting), "0-0"
        while True:
            entries = await self._redis.xread({key: last}, block=1000, count=100)
            for _stream, items in entries:
                for entry_id, fields in items:
                    last = entry_id
                    yield fields[b"m"].decode()

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        await self._redis.publish(f"{self._prefix}:media:{meeting}", _pack(sender, frame))

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(f"{self._prefix}:media:{meeting}")
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    yield _unpack(item["data"])
                elif item.get("type") == "subscribe" and ready is not None:
                    ready.set()  # Redis has confirmed the subscription
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        await self._redis.aclose()


class NatsBus:
    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "sealroom",
        retention_seconds: int = 86400,
    ) -> None:
        self._url, self._prefix, self._ttl = url, prefix, retention_seconds
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()

    @property
    def stream(self) -> str:
        return f"{self._prefix}_board"

    async def _connect(self) -> Any:
        async with self._lock:
            if self._nc is None:
                self._nc = await nats.connect(self._url)
                self._js = self._nc.jetstream()
                await self._js.add_stream(
                    StreamConfig(
                        name=self.stream,
                        subjects=[f"{self._prefix}.board.*"],
                        max_age=float(self._ttl),
                        max_msgs_per_subject=MAX_HISTORY,
                    )
                )
        return self._js

    async def post(self, meeting: str, message: str) -> None:
        js = await self._connect()
        await js.publish(f"{self._prefix}.board.{meeting}", message.encode())

    async def board(self, meeting: str) -> AsyncIterator[str]:
        js = await self._connect()
        sub = await js.subscribe(f"{self._prefix}.board.{meeting}", ordered_consumer=True)
        try:
            async for msg in sub.messages:
                yield msg.data.decode()
        finally:
            await sub.unsubscribe()

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        await self._connect()
        await self._nc.publish(f"{self._prefix}.media.{meeting}", _pack(sender, frame))

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        await self._connect()
        sub = await self._nc.subscribe(f"{self._prefix}.media.{meeting}")
        try:
            if ready is not None:
                # flush() is a PING/PONG round trip only while connected (during a reconnect
                # it returns at once): then the server has processed the SUB.
                self._require_connected()
                await self._nc.flush()
                self._require_connected()
                ready.set()
            async for msg in sub.messages:
                yield _unpack(msg.data)
        finally:
            await sub.unsubscribe()

    def _require_connected(self) -> None:
        if not self._nc.is_connected:
            raise ConnectionError("not connected to NATS")

    async def delete_stream(self) -> None:
        js = await self._connect()
        await js.delete_stream(self.stream)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
