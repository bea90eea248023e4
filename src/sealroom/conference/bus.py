"""Where a meeting's board messages and media frames travel between service processes.

* :class:`InProcessBus`: the default; one process.
* :class:`RedisBus`: board messages in a Redis Stream per meeting (kept, so late joiners
  read them), media over Redis pub/sub (live only).
* :class:`NatsBus`: board messages in a JetStream stream, media over core NATS subjects.

With Redis or NATS, several service processes can serve one meeting. Board history is kept
for ``retention_seconds`` after a meeting's last post (the life of a meeting), then expires.

Media is live only, on every bus: while the broker is away, frames are dropped (counted in
``sealroom_frames_dropped{reason="broker_unavailable"}``), never buffered to be replayed
later, whatever their size; a frame that reaches a receiver more than :data:`MAX_MEDIA_AGE`
seconds after it was sent (it sat in a client library's buffer) is dropped as stale.
Redis commands are retried through a short outage (a restart); a board that the broker lost
(a restart without persistence) is reported with :class:`BoardLostError`, never as silence.
Every bus keeps a board's two lanes and its caps (:mod:`sealroom.conference.board`) and
refuses a post with :class:`~sealroom.conference.board.BoardRefusedError`; any other
exception from ``post`` means that the broker failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import nats
import redis.asyncio as redis
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NotFoundError
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sealroom.conference.board import (
    BoardLimits,
    BoardLostError,
    BoardPost,
    BoardRefusedError,
    BoardStore,
    ControlPosters,
    user_token,
)
from sealroom.errors import MalformedInputError
from sealroom.meeting.messages import BoardMessage
from sealroom.ops import metrics
from sealroom.ops.logs import OncePerOutage

__all__ = [
    "MAX_MEDIA_AGE",
    "MEDIA_QUEUE",
    "BoardLostError",
    "Bus",
    "InProcessBus",
    "NatsBus",
    "RedisBus",
]

log = logging.getLogger("sealroom.conference.bus")
MEDIA_QUEUE: Final[int] = 256  # frames a slow receiver may fall behind before drops
#: Seconds after which a frame is stale: dropped rather than delivered late.
MAX_MEDIA_AGE: Final[float] = 2.0
_KNOWN_BOARDS: Final[int] = 4096  # meetings whose board a process remembers having seen


class Bus(Protocol):
    limits: BoardLimits

    async def post(self, post: BoardPost) -> None:
        """Append a board message to its meeting's history and deliver it; refuse it with
        :class:`BoardRefusedError` if the board's rules or caps say no."""
        ...

    def board(self, meeting: str, after: str | None = None) -> AsyncIterator[tuple[str, str]]:
        """Every board message of the meeting with its position: the history first, then
        live ones; with ``after`` (a position this board gave), only those after it. Raises
        :class:`BoardLostError` if ``after`` names a board that is gone."""
        ...

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None: ...

    def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Live media frames of the meeting, as (sending connection, frame). ``ready`` is
        set once the subscription is live: every frame sent after that is delivered."""
        ...

    async def ready(self) -> str:
        """``"ok"`` if the broker answers now, else why not (for ``/readyz``)."""
        ...

    async def close(self) -> None: ...


class InProcessBus:
    """One process, one event loop: the queues it hands out are not thread-safe, so a
    second loop (another thread) would hang waiting for wake-ups that never come; it is
    refused with :class:`RuntimeError` instead."""

    def __init__(
        self, limits: BoardLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or BoardLimits()
        self._store = BoardStore(self.limits, clock)
        self._board_subs: dict[str, set[asyncio.Queue[tuple[str, str]]]] = {}
        self._media_subs: dict[str, set[asyncio.Queue[tuple[str, bytes]]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("InProcessBus serves one event loop; use one per loop")

    async def post(self, post: BoardPost) -> None:
        self._same_loop()
        position = self._store.append(post)
        for q in self._board_subs.get(post.meeting, set()):
            q.put_nowait((position, post.text))

    async def board(self, meeting: str, after: str | None = None) -> AsyncIterator[tuple[str, str]]:
        self._same_loop()
        q: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        history = self._store.history(meeting, after)  # BoardLostError before anything else
        self._store.opened(meeting)
        for item in history:
            q.put_nowait(item)
        self._board_subs.setdefault(meeting, set()).add(q)
        try:
            while True:
                yield await q.get()
        finally:
            _unsubscribe(self._board_subs, meeting, q)
            self._store.closed(meeting)

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        self._same_loop()
        for q in self._media_subs.get(meeting, set()):
            try:
                q.put_nowait((sender, frame))
            except asyncio.QueueFull:  # media is lossy: drop, never block
                metrics.FRAMES_DROPPED.labels("slow_receiver").inc()

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
            _unsubscribe(self._media_subs, meeting, q)

    async def ready(self) -> str:
        return "ok"

    async def close(self) -> None:
        return None


def _unsubscribe(subs: dict[str, set[Any]], meeting: str, q: Any) -> None:
    """Forget a subscriber, and the meeting's entry with its last one."""
    left = subs.get(meeting)
    if left is not None:
        left.discard(q)
        if not left:
            del subs[meeting]


_STAMP = struct.Struct(">d")


def _pack(sender: str, frame: bytes, now: float) -> bytes:
    """sender length, sender, send time (wall clock, seconds), frame."""
    raw = sender.encode()
    return bytes((len(raw),)) + raw + _STAMP.pack(now) + frame


def _unpack(data: bytes, now: float) -> tuple[str, bytes] | None:
    """The sender and frame, or None for a frame older than MAX_MEDIA_AGE (stale)."""
    n = data[0]
    (sent,) = _STAMP.unpack_from(data, 1 + n)
    if now - sent > MAX_MEDIA_AGE:
        metrics.FRAMES_DROPPED.labels("stale").inc()
        return None
    return data[1 : 1 + n].decode(), data[1 + n + _STAMP.size :]


# One atomic step: the lane's rules and caps, the counters, the append, the expiry.
# KEYS: stream, meta (started, control, participant), control posters, posts per user.
# ARGV: lane, kind, user, message, ttl, max control, max participant, max per user, a board
# id (kept if the board has one already: positions name it), grants...
_POST_SCRIPT: Final[str] = """
local stream, meta, posters, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lane, kind, user, message = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if lane == 'control' then
  if kind == 'start' then
    if redis.call('HEXISTS', meta, 'started') == 1 then return 'already_started' end
  elseif redis.call('SISMEMBER', posters, user) == 0 then
    return 'not_allowed'
  end
  if tonumber(redis.call('HGET', meta, 'control') or '0') >= tonumber(ARGV[6]) then
    return 'board_full'
  end
  redis.call('HINCRBY', meta, 'control', 1)
  if kind == 'start' then redis.call('HSET', meta, 'started', '1') end
  for i = 10, #ARGV do redis.call('SADD', posters, ARGV[i]) end
else
  if tonumber(redis.call('HGET', meta, 'participant') or '0') >= tonumber(ARGV[7]) then
    return 'board_full'
  end
  if tonumber(redis.call('HGET', users, user) or '0') >= tonumber(ARGV[8]) then
    return 'quota_exceeded'
  end
  redis.call('HINCRBY', meta, 'participant', 1)
  redis.call('HINCRBY', users, user, 1)
end
redis.call('HSETNX', meta, 'id', ARGV[9])
redis.call('XADD', stream, '*', 'm', message)
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[5]) end
return 'ok'
"""


class RedisBus:
    """Board in one Stream per meeting; the lanes' rules, caps and counters are checked and
    updated with the append in one Lua script, so they hold across service processes.

    Each open channel holds two Redis connections while it waits (its board read and its
    media subscription), so the pool allows ``max_connections`` (redis-py's default of 100
    would stop a process at about 50 channels; Redis itself allows 10,000 clients).

    Commands are retried on connection errors for about :data:`REDIS_RETRY_SECONDS` (a
    restart), on fresh connections; media publishes are not (a frame that cannot go now is
    dropped). A board this process saw that is gone, or replaced (its first entry differs),
    raises :class:`BoardLostError` in :meth:`board` and refuses posts (``board_lost``)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379",
        *,
        prefix: str = "sealroom",
        retention_seconds: int = 86400,
        limits: BoardLimits | None = None,
        max_connections: int = 4096,
    ) -> None:
        retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=9)
        self._redis: Any = redis.from_url(
            url,
            max_connections=max_connections,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=2.0,
            health_check_interval=30,
        )
        # Media and the readiness check: no retries (a frame that cannot go now is dropped).
        self._fast: Any = redis.from_url(
            url, max_connections=max_connections, socket_connect_timeout=1.0, socket_timeout=2.0
        )
        self._prefix, self._ttl = prefix, retention_seconds
        self.limits = limits or BoardLimits()
        self._script: Any = self._redis.register_script(_POST_SCRIPT)
        self._first: OrderedDict[str, bytes] = OrderedDict()  # meeting -> first entry id
        self.outage = OncePerOutage(log, "the Redis broker")

    def _remember(self, meeting: str, first: bytes) -> None:
        self._first[meeting] = first
        self._first.move_to_end(meeting)
        while len(self._first) > _KNOWN_BOARDS:
            self._first.popitem(last=False)

    async def _lost(self, meeting: str) -> bool:
        """Whether the board this process saw for ``meeting`` is gone or replaced."""
        seen = self._first.get(meeting)
        if seen is None:
            return False
        first = await self._redis.xrange(self._board_key(meeting), count=1)
        return not first or first[0][0] != seen

    async def _guarded(self, operation: str, call: Any) -> Any:
        """``await call()``, counting and logging (once an outage) a broker failure."""
        try:
            result = await call()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            metrics.BROKER_ERRORS.labels("redis", operation).inc()
            self.outage.failed(exc)
            raise
        if self.outage.failing:
            self.outage.ok()
        return result

    def _board_key(self, meeting: str) -> str:
        return f"{self._prefix}:board:{{{meeting}}}"  # {…}: one cluster slot per meeting

    async def post(self, post: BoardPost) -> None:
        post.check_size(self.limits)
        key = self._board_key(post.meeting)
        lim = self.limits
        if await self._guarded("post", lambda: self._lost(post.meeting)):
            raise BoardRefusedError("board_lost", "the broker lost this meeting's board")
        result = await self._guarded(
            "post",
            lambda: self._script(
                keys=[key, key + ":meta", key + ":posters", key + ":users"],
                args=[
                    post.lane,
                    post.kind,
                    post.user,
                    post.text,
                    self._ttl,
                    lim.max_control_posts,
                    lim.max_participant_posts,
                    lim.max_posts_per_user,
                    secrets.token_hex(6),
                    *sorted(post.grants),
                ],
            ),
        )
        outcome = result.decode() if isinstance(result, bytes) else str(result)
        if outcome == "already_started":
            raise BoardRefusedError("already_started", "this meeting has started")
        if outcome == "not_allowed":
            raise BoardRefusedError(
                "not_allowed", f"only the meeting's host and admins post {post.kind}"
            )
        if outcome == "board_full":
            raise BoardRefusedError("board_full", f"this meeting's {post.lane} lane is full")
        if outcome == "quota_exceeded":
            raise BoardRefusedError(
                "quota_exceeded", f"at most {lim.max_posts_per_user} announce/leave per user"
            )
        if outcome != "ok":
            raise RuntimeError(f"unexpected answer from the board script: {outcome!r}")

    async def board(self, meeting: str, after: str | None = None) -> AsyncIterator[tuple[str, str]]:
        key, last, board_id = self._board_key(meeting), "0-0", None
        if after is not None:
            board_id, _, last = after.partition(".")
            if not await self._guarded("board", lambda: self._board_is(key, board_id)):
                raise BoardLostError(f"meeting {meeting}'s board is gone")
        elif await self._guarded("board", lambda: self._lost(meeting)):
            raise BoardLostError(f"the broker no longer holds meeting {meeting}'s board")
        while True:
            entries = await self._guarded(
                "board", functools.partial(self._redis.xread, {key: last}, block=1000, count=100)
            )
            # Quiet for a second: check that the board is still the one we read.
            if (
                not entries
                and last != "0-0"
                and await self._guarded(
                    "board", functools.partial(self._gone, meeting, key, board_id)
                )
            ):
                raise BoardLostError(f"the broker lost meeting {meeting}'s board")
            if entries and board_id is None:
                raw = await self._guarded("board", lambda: self._redis.hget(key + ":meta", "id"))
                board_id = raw.decode() if raw is not None else "000000000000"
            for _stream, items in entries:
                for entry_id, fields in items:
                    if last == "0-0":
                        self._remember(meeting, entry_id)
                    last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    yield f"{board_id}.{last}", fields[b"m"].decode()

    async def _board_is(self, key: str, board_id: str) -> bool:
        raw = await self._redis.hget(key + ":meta", "id")
        return raw is not None and bool(raw.decode() == board_id)

    async def _gone(self, meeting: str, key: str, board_id: str | None) -> bool:
        if await self._lost(meeting):
            return True
        return board_id is not None and not await self._board_is(key, board_id)

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        try:
            await self._fast.publish(
                f"{self._prefix}:media:{meeting}", _pack(sender, frame, time.time())
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            metrics.FRAMES_DROPPED.labels("broker_unavailable").inc()
            self.outage.failed(exc)
            return
        if self.outage.failing:
            self.outage.ok()

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(f"{self._prefix}:media:{meeting}")
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    unpacked = _unpack(item["data"], time.time())
                    if unpacked is not None:
                        yield unpacked
                elif item.get("type") == "subscribe" and ready is not None:
                    ready.set()  # Redis has confirmed the subscription
        finally:
            with contextlib.suppress(Exception):  # the broker may be gone
                await pubsub.aclose()

    async def ready(self) -> str:
        try:
            await asyncio.wait_for(self._fast.ping(), 2.0)
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            self.outage.failed(exc)
            return f"Redis unreachable ({type(exc).__name__})"
        return "ok"

    async def close(self) -> None:
        await self._redis.aclose()
        await self._fast.aclose()


_FULL_SUBJECT: Final[int] = 10077  # JetStream: maximum messages per subject exceeded
_WRONG_LAST_SEQUENCE: Final[int] = 10071  # JetStream: an expected-last-sequence check failed
_STREAM_EXISTS: Final[int] = 10058  # JetStream: the stream exists with another config
_CONTROL_CACHE: Final[int] = 1024  # meetings whose control posters a process remembers


@dataclass
class _Control:
    """One process's view of a meeting's control posters, read from the board."""

    posters: ControlPosters = field(default_factory=ControlPosters)
    seen: int = 0  # the stream sequence read up to, on the grants subjects
    chunks: dict[str, int] = field(default_factory=dict)  # "g"/"c" -> first chunk not full
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class NatsBus:
    """Board in one JetStream stream, one subject per lane and user (``retention_seconds``,
    discard-new per subject, so a full subject refuses rather than pushing out):

    * ``<prefix>.board.<meeting>.g.start``: the start, accepted only on an empty subject;
    * ``<prefix>.board.<meeting>.g.<n>``: ``manager`` posts, in chunks of the per-subject cap;
    * ``<prefix>.board.<meeting>.c.<n>``: the other control posts, in chunks likewise;
    * ``<prefix>.board.<meeting>.p.<user token>``: one user's announce and leave posts.

    The server refuses a user's participant post beyond the cap on its subject. Each process
    derives the control posters from the ``g`` subjects (start and manager posts), cached,
    and reads what is new when someone it does not know posts a control message."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "sealroom",
        retention_seconds: int = 86400,
        limits: BoardLimits | None = None,
    ) -> None:
        self._url, self._prefix, self._ttl = url, prefix, retention_seconds
        self.limits = limits or BoardLimits()
        per_subject = self.limits.max_posts_per_user
        self._max_chunks = -(-self.limits.max_control_posts // per_subject)
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()
        self._control: OrderedDict[str, _Control] = OrderedDict()
        self.outage = OncePerOutage(log, "the NATS broker")

    @property
    def stream(self) -> str:
        return f"{self._prefix}_board"

    async def _connect(self) -> Any:
        async with self._lock:
            if self._nc is None:
                self._nc = await nats.connect(
                    self._url,
                    max_reconnect_attempts=-1,  # a broker outage is waited out, not fatal
                    reconnect_time_wait=1,
                    ping_interval=10,  # a dead link is noticed in about 20 s, not 2 minutes
                    max_outstanding_pings=2,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
                self._js = self._nc.jetstream()
                config = StreamConfig(
                    name=self.stream,
                    subjects=[f"{self._prefix}.board.>"],
                    max_age=float(self._ttl),
                    max_msgs_per_subject=self.limits.max_posts_per_user,
                    discard=DiscardPolicy.NEW,
                    discard_new_per_subject=True,
                )
                try:
                    await self._js.add_stream(config)
                except APIError as exc:
                    if exc.err_code != _STREAM_EXISTS:
                        raise
                    await self._js.update_stream(config)  # from an earlier layout or cap
        return self._js

    def _subject(self, meeting: str, *tail: str) -> str:
        return ".".join((self._prefix, "board", meeting, *tail))

    async def post(self, post: BoardPost) -> None:
        post.check_size(self.limits)
        js = await self._connect()
        data = post.text.encode()
        if post.lane == "participant":
            try:
                await js.publish(self._subject(post.meeting, "p", user_token(post.user)), data)
            except APIError as exc:
                if exc.err_code == _FULL_SUBJECT:
                    raise BoardRefusedError(
                        "quota_exceeded",
                        f"at most {self.limits.max_posts_per_user} announce/leave per user",
                    ) from None
                raise
            return
        control = self._control_of(post.meeting)
        async with control.lock:
            if post.kind == "start":
                await self._publish_start(post, control)
                return
            if post.user not in control.posters.posters:
                await self._refresh(post.meeting, control)
            control.posters.check(post)
            await self._publish_control(post, "g" if post.kind == "manager" else "c", control)
            control.posters.record(post)

    def _control_of(self, meeting: str) -> _Control:
        control = self._control.get(meeting)
        if control is None:
            control = self._control[meeting] = _Control()
            while len(self._control) > _CONTROL_CACHE:
                self._control.popitem(last=False)  # read again from the board if needed
        self._control.move_to_end(meeting)
        return control

    async def _publish_start(self, post: BoardPost, control: _Control) -> None:
        try:
            await self._js.publish(
                self._subject(post.meeting, "g", "start"),
                post.text.encode(),
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
        except APIError as exc:
            if exc.err_code == _WRONG_LAST_SEQUENCE:
                control.posters.started = True
                raise BoardRefusedError("already_started", "this meeting has started") from None
            raise
        control.posters.record(post)

    async def _publish_control(self, post: BoardPost, group: str, control: _Control) -> None:
        if group not in control.chunks:
            control.chunks[group] = await self._last_chunk(post.meeting, group)
        while control.chunks[group] < self._max_chunks:
            subject = self._subject(post.meeting, group, str(control.chunks[group]))
            try:
                await self._js.publish(subject, post.text.encode())
                return
            except APIError as exc:
                if exc.err_code != _FULL_SUBJECT:
                    raise
            control.chunks[group] += 1
        raise BoardRefusedError("board_full", "this meeting's control lane is full")

    async def _last_chunk(self, meeting: str, group: str) -> int:
        """The chunk the newest post of this group went to (0 if none)."""
        try:
            last = await self._js.get_last_msg(self.stream, self._subject(meeting, group, ">"))
        except NotFoundError:
            return 0
        tail = str(last.subject).rsplit(".", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def _refresh(self, meeting: str, control: _Control) -> None:
        """Read the start and manager posts this process has not seen yet (one round trip
        when there are none)."""
        grants = self._subject(meeting, "g", ">")
        try:
            last = await self._js.get_last_msg(self.stream, grants)
        except NotFoundError:
            return
        if last.seq <= control.seen:
            return
        sub = await self._js.pull_subscribe(
            grants,
            stream=self.stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=control.seen + 1,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        try:
            pending = True
            while pending:
                try:
                    batch = await sub.fetch(256, timeout=5)
                except TimeoutError:
                    break  # what was there has expired meanwhile
                for msg in batch:
                    control.seen = max(control.seen, msg.metadata.sequence.stream)
                    pending = msg.metadata.num_pending > 0
                    with contextlib.suppress(MalformedInputError):
                        control.posters.record(BoardPost.of(BoardMessage.from_json(msg.data)))
        finally:
            with contextlib.suppress(Exception):
                info = await sub.consumer_info()
                await self._js.delete_consumer(self.stream, info.name)
            await sub.unsubscribe()

    async def board(self, meeting: str, after: str | None = None) -> AsyncIterator[tuple[str, str]]:
        js = await self._connect()
        config = None
        if after is not None:
            try:  # the message at ``after`` must still be this meeting's
                kept = await js.get_msg(self.stream, int(after))
            except NotFoundError:
                raise BoardLostError from None
            if not str(kept.subject).startswith(self._subject(meeting) + "."):
                raise BoardLostError
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=int(after) + 1
            )
        sub = await js.subscribe(self._subject(meeting, ">"), ordered_consumer=True, config=config)
        try:
            async for msg in sub.messages:
                yield str(msg.metadata.sequence.stream), msg.data.decode()
        finally:
            await sub.unsubscribe()

    async def _disconnected(self) -> None:
        self.outage.failed("disconnected")

    async def _reconnected(self) -> None:
        self.outage.ok()

    async def _error(self, exc: Exception) -> None:
        metrics.BROKER_ERRORS.labels("nats", "connection").inc()
        self.outage.failed(exc)

    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        await self._connect()
        if not self._nc.is_connected:
            # nats-py would keep it in its reconnect buffer and send it, stale, after the
            # outage (and a full buffer fails every publish): drop it instead.
            metrics.FRAMES_DROPPED.labels("broker_unavailable").inc()
            return
        await self._nc.publish(f"{self._prefix}.media.{meeting}", _pack(sender, frame, time.time()))

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
                unpacked = _unpack(msg.data, time.time())
                if unpacked is not None:
                    yield unpacked
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _require_connected(self) -> None:
        if not self._nc.is_connected:
            raise ConnectionError("not connected to NATS")

    async def ready(self) -> str:
        try:
            js = await asyncio.wait_for(self._connect(), 3.0)
            if not self._nc.is_connected:
                return "NATS disconnected (reconnecting)"
            await asyncio.wait_for(js.stream_info(self.stream), 2.0)
        except Exception as exc:  # any failure is "not ready", with its type
            return f"NATS unavailable ({type(exc).__name__})"
        return "ok"

    async def delete_stream(self) -> None:
        js = await self._connect()
        await js.delete_stream(self.stream)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
