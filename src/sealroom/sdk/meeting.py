"""The asyncio meeting client: a :class:`~sealroom.meeting.session.MeetingSession` driven
over the conferencing channel, with the key service reached through the SDK.

It posts and reads board messages, verifies each sender's device certificate, runs the
session's key-service calls, installs SFrame keys, sends and receives media, hands the
media keys to a :class:`~sealroom.sdk.keyexport.KeyProvider` if the application has its
own media stack, and reports typed events (:mod:`sealroom.sdk.events`) through
:meth:`MeetingClient.events` and handlers registered with :meth:`MeetingClient.on`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, assert_never
from urllib.parse import quote

import websockets

from sealroom.api.encoding import b64d
from sealroom.api.identity import DEVICE_CERT_LABEL, device_certificate_message
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError
from sealroom.errors import MeetingStateError as CoreStateError
from sealroom.media.keys import (
    DEFAULT_SUITE,
    FrameRejectedError,
    Receiver,
    Sender,
    kid_for,
    sender_base_key,
)
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import (
    Action,
    AddAdmin,
    AddMember,
    AddMembers,
    BanMember,
    CallMeAt,
    ClaimManager,
    CreateGroup,
    DeleteGroup,
    GroupMembers,
    InstallMediaKey,
    KeyServiceCall,
    LiftBan,
    MeetingConfig,
    MeetingSession,
    Notify,
    OpenEnvelope,
    OpenPath,
    Post,
    Preapprove,
    RegisterValue,
    RemoveAdmin,
    RemoveMember,
    RetireMediaKeys,
    RotateDeviceKey,
    Timing,
)
from sealroom.sdk.client import Client, _maybe_await
from sealroom.sdk.errors import MeetingStateError, NetworkError, SdkError, ServiceRefusedError
from sealroom.sdk.events import (
    BadMessage,
    BoardLost,
    ChannelClosed,
    ChannelError,
    DecryptionFailed,
    DeviceRotated,
    FrameReceived,
    InternalError,
    MeetingEvent,
    Reconnected,
    Retrying,
    RosterRecovered,
)
from sealroom.sdk.keyexport import KeyProvider, SenderKey
from sealroom.sdk.resources import Target

__all__ = [
    "BOARD_BATCH",
    "CONFERENCE_AUDIENCE",
    "CONNECT_PATIENCE_SECONDS",
    "FAILED_LOOKUP_SECONDS",
    "KEY_CACHE_SECONDS",
    "MAX_POST_SENDS",
    "MAX_UNCONFIRMED_POSTS",
    "MAX_UNKNOWN_DEVICES_PER_USER",
    "RECONNECT_MAX_SECONDS",
    "RECONNECT_SECONDS",
    "RESEND_BURST",
    "RESEND_RATE",
    "RETRY_MAX_SECONDS",
    "RETRY_SECONDS",
    "EventHandler",
    "MeetingClient",
]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=MeetingEvent)
_log = logging.getLogger(__name__)

#: A handler for events of one type: a function or a coroutine function.
EventHandler = Callable[[_E], "Awaitable[None] | None"]

CONFERENCE_AUDIENCE = "sealroom-conference"
KEY_CACHE_SECONDS = 60.0
#: A device whose look-up failed is not looked up again for this long...
FAILED_LOOKUP_SECONDS = 60.0
#: ...and a user with this many unknown devices in that time gets no more look-ups, so
#: posts from invented device ids cost a client a bounded number of requests per poster.
MAX_UNKNOWN_DEVICES_PER_USER = 3
#: Board messages handled together: their posters' user keys come in one request.
BOARD_BATCH = 256
#: A transient failure (the key service unreachable, a 5xx) is retried after this, doubling
#: up to RETRY_MAX_SECONDS; the board messages wait, in order, and none is dropped.
RETRY_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
#: After the channel drops, reconnect after this, doubling up to RECONNECT_MAX_SECONDS.
RECONNECT_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
#: A first connection is asked for again, backing off, for about this long.
CONNECT_PATIENCE_SECONDS = 60.0
#: Our posts kept until the board shows them (resent after a reconnection); a manager posts
#: a few per key, so this covers minutes of a large meeting's joins...
MAX_UNCONFIRMED_POSTS = 4096
#: ...each sent at most this many times (a post the relay keeps failing on is given up)...
MAX_POST_SENDS = 5
#: ...and resent at most this many at once, then this many a second (under the relay's
#: default post limits: 500 at once, 50 a second).
RESEND_BURST = 256
RESEND_RATE = 40.0


@dataclass
class _OwnPost:
    """One of our posts: its sequence number, its wire text, how often it was sent."""

    seq: int
    text: str = field(repr=False)
    sends: int = 0


#: Close codes after which reconnecting cannot help: the token or the page is refused
#: (4401, 4403), the request is malformed (4400), the board is gone (4410: join again).
_FINAL_CLOSE_CODES = frozenset({4400, 4401, 4403, 4410})
#: Participants' own posts, which only a device that may manage the meeting needs.
_PARTICIPANT_KINDS = frozenset({"announce", "leave", "roster-request"})
#: Kinds only a meeting's managers post: their devices are always checked at the key
#: service (a device revoked as lost must not post session keys), never by a card alone.
_CONTROL_KINDS = frozenset(
    {"start", "session-key", "roster", "manager", "remove", "admit", "end", "tree", "tree-path"}
)


def _user_id(value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"a user id is a str, not {type(value).__name__}")


class MeetingClient:
    """One device in one meeting. ``await start()`` (the host) or ``await join()``, then
    ``publish`` frames and read :meth:`events` (or register handlers with :meth:`on`).

    ``sdk``: an initialized :class:`~sealroom.sdk.client.Client` of this device.
    ``conference_url``: the conferencing service (``http(s)://`` or ``ws(s)://``).
    ``config``: the meeting's id, host and invitees, as everyone knows them.
    ``token``: called with the audience ``sealroom-conference`` for the channel's token;
    by default the ``jwt`` provider the ``Client`` was made with.
    ``key_provider``: receives every sender's SFrame key per epoch, for an application
    with its own media stack (:mod:`sealroom.sdk.keyexport`).
    ``queue_events``: keep events for :meth:`events`; pass False when only handlers are
    used, so that unread events do not pile up.
    ``timing``: the protocol's waits (tests compress them). ``suite``: the SFrame cipher
    suite. ``switch_delay``: seconds between receiving a new key and sending with it.
    ``grace_seconds``: how long the previous epoch's frames still decrypt.
    """

    def __init__(
        self,
        sdk: Client,
        conference_url: str,
        config: MeetingConfig,
        *,
        token: Callable[[str], Awaitable[str] | str] | None = None,
        key_provider: KeyProvider | None = None,
        queue_events: bool = True,
        timing: Timing | None = None,
        suite: int = DEFAULT_SUITE,
        switch_delay: float = 0.5,
        grace_seconds: float = 2.0,
    ) -> None:
        if not isinstance(sdk, Client):
            raise TypeError(f"sdk must be a sealroom.sdk.Client, not {type(sdk).__name__}")
        if not isinstance(config, MeetingConfig):
            raise TypeError(f"config must be a MeetingConfig, not {type(config).__name__}")
        if not isinstance(conference_url, str):
            raise TypeError("conference_url must be a str")
        if key_provider is not None and not isinstance(key_provider, KeyProvider):
            raise TypeError("key_provider must have set_key, set_send_key and retire_epoch")
        self.sdk, self.config = sdk, config
        base = conference_url.rstrip("/")
        if base.startswith("http"):  # accept the service's http(s) URL too
            base = "ws" + base[4:]
        self._url = base + f"/v1/meetings/{quote(config.meeting_id, safe='')}/channel"
        self._token = token if token is not None else sdk.token_provider
        self._suite = suite
        self._grace = grace_seconds
        self._key_provider = key_provider
        self._queue_events = queue_events
        self._handlers: dict[type[MeetingEvent], list[Callable[[Any], Any]]] = {}
        self._exported: set[int] = set()  # epochs whose keys the key provider holds
        self._export_timers: list[asyncio.TimerHandle] = []
        self._send_epoch = -1  # the newest epoch handed to set_send_key
        self._entered = False  # start() or join() was called
        self._switch_delay = switch_delay
        self.session = MeetingSession(
            config,
            user=sdk.user_id,
            device=sdk.device_id,
            signing_key=sdk._signer(),
            timing=timing,
            seq_start=int(time.time() * 1000),  # above anything an earlier run posted
        )
        self._events: asyncio.Queue[MeetingEvent | None] = asyncio.Queue()  # None: closed
        self.receiver = Receiver(suite=suite, grace_seconds=grace_seconds)
        self._sender: Sender | None = None
        self._next_sender: tuple[float, Sender] | None = None
        self._rosters: dict[int, list[str]] = {}
        # Devices checked at the key service (time, user, key), kept KEY_CACHE_SECONDS...
        self._keys: dict[str, tuple[float, str, VerifyingKey]] = {}
        # ...and devices known from the card their announce carried (user, key): enough for
        # participants' posts, never for a manager's (a device revoked as lost must not post
        # session keys), which always go through _keys.
        self._card_keys: dict[tuple[str, str], VerifyingKey] = {}  # (user, device) -> key
        self._failed_devices: dict[str, float] = {}  # device -> when its look-up failed
        self._failed_users: dict[str, list[float]] = {}  # user -> when its look-ups failed
        self._user_keys: dict[str, VerifyingKey | None] = {}  # for the meeting; None: no user
        # Board messages (and channel errors) as received, handled in order.
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._processor: asyncio.Task[None] | None = None
        self._ws: Any = None
        self._board_pos: str | None = None  # the last board position seen, to resume after
        # Our posts, in order: not sent on the current socket yet (the outbox), and sent
        # but not yet seen on the board (a relay whose broker failed may have taken one and
        # closed the channel without storing it). After a reconnection the unconfirmed ones
        # go again, ahead of the outbox (receivers drop what they have seen by its seq).
        self._outbox: collections.deque[_OwnPost] = collections.deque()
        self._unconfirmed: collections.deque[_OwnPost] = collections.deque()
        self._flushing = False  # a task is sending the outbox
        self._closing = False
        # Announces and leaves of participants who cannot manage the meeting, kept (per
        # user, the posts since its last announce) until this device may have to manage it.
        self._deferred: dict[str, list[BoardMessage]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_event_loop()
        self._tasks: set[asyncio.Future[None]] = set()

    # --- events ----------------------------------------------------------------------

    def on(self, event_type: type[_E], handler: EventHandler[_E]) -> None:
        """Call ``handler(event)`` for every event of ``event_type`` (or a subclass of it:
        ``MeetingEvent`` receives them all). A coroutine function runs as a task; an
        exception in a handler is logged and does not stop the meeting."""
        if not (isinstance(event_type, type) and issubclass(event_type, MeetingEvent)):
            raise TypeError("event_type must be a MeetingEvent type, e.g. KeyInstalled")
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._handlers.setdefault(event_type, []).append(handler)

    def off(self, event_type: type[_E], handler: EventHandler[_E]) -> None:
        """Stop calling a handler registered with :meth:`on` (ValueError if it was not)."""
        self._handlers.get(event_type, []).remove(handler)

    async def events(self) -> AsyncIterator[MeetingEvent]:
        """Every event, in order, as it happens: ``async for event in meeting.events()``.
        Runs until the caller stops iterating (events wait in a queue meanwhile) or the
        client is closed."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # (for any other reader too)
                return
            yield event

    async def next_event(self, timeout: float | None = None) -> MeetingEvent:
        """The next event; ``TimeoutError`` if none comes within ``timeout`` seconds,
        :class:`MeetingStateError` once the client is closed and its events are read."""
        if not self._events.empty():
            event = self._events.get_nowait()
        else:
            event = await asyncio.wait_for(self._events.get(), timeout)
        if event is None:
            self._events.put_nowait(None)
            raise MeetingStateError("the meeting client is closed")
        return event

    def _emit(self, event: MeetingEvent) -> None:
        if self._queue_events:
            self._events.put_nowait(event)
        for cls in type(event).__mro__:
            for handler in list(self._handlers.get(cls, ())):
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        self._spawn(self._await_handler(result, event))
                except Exception:
                    _log.exception("a handler of %s failed", event.name)

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` as a task of ours (referenced until it is done)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _await_handler(result: Awaitable[Any], event: MeetingEvent) -> None:
        try:
            await result
        except Exception:
            _log.exception("a handler of %s failed", event.name)

    # --- lifecycle -------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time()

    async def connect(self) -> None:
        if not self.session._card:
            self.session._card = await self._own_card()
        self._ws = await self._first_socket()
        self._reader = asyncio.create_task(self._read())
        if self._processor is None:
            self._processor = asyncio.create_task(self._process())

    async def _first_socket(self) -> Any:
        """The channel, asking again (backing off, for about a minute) while the service
        is unreachable, slow to answer the handshake or shedding load (429, 5xx): a
        thousand participants joining at once must not lose the ones it answered late. A
        refusal (a bad token, a page not allowed) is raised at once."""
        delay, waited = RECONNECT_SECONDS, 0.0
        while True:
            try:
                return await self._open_socket()
            except websockets.InvalidStatus as exc:
                status = exc.response.status_code
                if (status != 429 and status < 500) or waited >= CONNECT_PATIENCE_SECONDS:
                    raise
            except OSError:  # unreachable, or the handshake timed out
                if waited >= CONNECT_PATIENCE_SECONDS:
                    raise
            self._emit(Retrying(delay))
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _open_socket(self) -> Any:
        """The channel, resuming after the last board message seen (if any)."""
        token = await _maybe_await(self._token(CONFERENCE_AUDIENCE))
        url = self._url + "?batch=1&device=" + quote(self.sdk.device_id or "", safe="")
        if self._board_pos is not None:
            url += "&after=" + quote(self._board_pos, safe="")
        return await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=1 << 20
        )

    async def _own_card(self) -> dict[str, str]:
        """This device's certificate as the key service lists it, for our announce."""
        return await self._retrying(self.sdk.device_card)

    async def _locked(self, step: Callable[[float], list[Action]]) -> None:
        """Run one step of the session and all that follows from it, holding the lock, so
        that posts leave in the order the session numbered them."""
        async with self._lock:
            await self._run(step(self._now()))

    async def _checked(self, step: Callable[[float], list[Action]]) -> None:
        """As :meth:`_locked`, for the application's calls: one the meeting's state does
        not allow raises :class:`MeetingStateError` and changes nothing."""
        async with self._lock:
            try:
                actions = step(self._now())
            except CoreStateError as exc:
                raise MeetingStateError(str(exc)) from None
            await self._run(actions)

    def _idle(self) -> None:
        if self._entered:
            raise MeetingStateError("this meeting client already started or joined")
        self._entered = True

    async def start(self) -> None:
        """Host: start the meeting (create its group, post the first key)."""
        self._idle()
        await self.connect()
        await self._checked(self.session.start)

    async def join(self) -> None:
        """Join a meeting the host started (or will start: the join is retried)."""
        self._idle()
        await self.connect()
        await self._checked(self.session.join)

    async def leave(self) -> None:
        """Leave (a manager hands over first) and close the channel."""
        await self._checked(self.session.leave)
        await self.close()

    async def remove(self, user: str) -> None:
        """Manager: remove ``user``; a fresh key follows that it cannot open."""
        _user_id(user)
        await self._checked(lambda now: self.session.remove(user, now))

    async def admit(self, user: str) -> None:
        """Manager: let in ``user``, who knocked (:class:`~sealroom.sdk.events.Knock`)."""
        _user_id(user)
        await self._checked(lambda now: self.session.admit(user, now))

    async def end(self) -> None:
        """Manager: end the meeting for everyone (its group is deleted)."""
        await self._checked(self.session.end)

    async def close(self) -> None:
        """Close the channel and stop; :meth:`events` ends once the events before are read.
        (It does not leave the meeting: :meth:`leave` does, and closes.)"""
        if not self._closing:
            self._events.put_nowait(None)  # the end of events()
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._reader, self._processor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            await self._ws.close()

    # --- media -----------------------------------------------------------------------

    async def publish(self, payload: bytes, metadata: bytes = b"") -> bool:
        """Encrypt and send one frame; False while this device has no key yet."""
        pending = self._next_sender
        if pending is not None and self._now() >= pending[0]:
            self._sender, self._next_sender = pending[1], None
        if self._sender is None or self._ws is None:
            return False
        try:
            await self._ws.send(self._sender.encrypt(metadata, payload))
        except websockets.ConnectionClosed:
            return False  # media is lossy: while the channel is down, frames are dropped
        return True

    def _on_frame(self, frame: bytes) -> None:
        try:
            epoch, index, payload = self.receiver.decrypt(b"", frame, self._now())
        except FrameRejectedError as exc:
            sender = self._who(exc.epoch, exc.sender)
            self._emit(DecryptionFailed(exc.kid, sender, exc.sender))
            return
        except Exception:  # a hostile frame must not stop the reader
            self._emit(DecryptionFailed(None))
            return
        self._emit(FrameReceived(self._who(epoch, index), epoch, payload))

    def _who(self, epoch: int | None, index: int | None) -> str | None:
        roster = self._rosters.get(epoch) if epoch is not None else None
        if roster is None or index is None or index >= len(roster):
            return None
        return roster[index]

    # --- the channel -----------------------------------------------------------------

    async def _read(self) -> None:
        """Frames are decrypted here; board text is queued for :meth:`_process`, so the
        socket is always read (and its keepalives answered) however slow the board is.
        When the channel drops it reconnects, backing off, and resumes the board after the
        last message seen; it gives up when reconnecting cannot help (the token or the page
        refused, the board gone) or the meeting is over for us."""
        delay = RECONNECT_SECONDS
        while True:
            try:
                async for raw in self._ws:
                    if isinstance(raw, bytes):
                        self._on_frame(raw)
                    else:
                        self._on_channel_text(raw)
                    delay = RECONNECT_SECONDS
            except websockets.ConnectionClosed:
                pass
            ws = self._ws
            code = ws.close_code if ws else None
            self._emit(ChannelClosed(code, (ws.close_reason or "") if ws else ""))
            if code == 4410:
                self._emit(BoardLost())
            if code in _FINAL_CLOSE_CODES or self.session.state in ("left", "ended"):
                return
            while True:  # close() cancels this task: no reconnection after it
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                try:
                    self._ws = await self._open_socket()
                    break
                except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                    continue
                except SdkError:
                    continue  # no token right now: try again
                except Exception as exc:  # the application's token provider failed
                    _log.warning("reconnecting: the token provider raised %s", type(exc).__name__)
                    continue
            self._requeue_unconfirmed()
            self._emit(Reconnected(self._board_pos))
            self._spawn(self._flush_outbox())  # while this task goes on reading

    def _on_channel_text(self, raw: str) -> None:
        """Queue board messages (one, or a batch) and note the newest position."""
        try:
            data = json.loads(raw)
            items = data.get("batch", [data]) if data.get("type") == "board" else [data]
        except (ValueError, AttributeError):
            self._emit(BadMessage(error="not JSON"))
            return
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("pos"), str):
                self._board_pos = item["pos"]
            self._confirm(item)
            if not self._for_others(item):
                self._inbox.put_nowait(item)

    def _confirm(self, item: dict[str, Any]) -> None:
        """One of our posts on the board: it and every post of ours before it are stored
        (a connection's posts are stored in order, and after a reconnection the unconfirmed
        ones go first). The relay lets only our user post in our user's name (the JWT's
        subject), so nobody else can confirm our posts away; its signature is checked later."""
        message = item.get("message")
        if (
            not isinstance(message, dict)
            or message.get("device") != self.session.device
            or message.get("user") != self.session.user
        ):
            return
        seq = message.get("seq")
        if isinstance(seq, int):
            while self._unconfirmed and self._unconfirmed[0].seq <= seq:
                self._unconfirmed.popleft()

    def _requeue_unconfirmed(self) -> None:
        """After a reconnection: what the board has not shown goes again, first; a post sent
        MAX_POST_SENDS times and never seen is given up (a post the broker keeps failing on
        must not block every later one)."""
        again = [p for p in self._unconfirmed if p.sends < MAX_POST_SENDS]
        if len(again) < len(self._unconfirmed):
            _log.warning(
                "meeting %s: %d posts never reached the board; given up",
                self.config.meeting_id,
                len(self._unconfirmed) - len(again),
            )
        self._unconfirmed.clear()
        self._outbox.extendleft(reversed(again))

    def _for_others(self, item: dict[str, Any]) -> bool:
        """A ``tree-path`` post without a path for this device: nothing in it concerns us,
        so it is dropped before its checks (at 1,000 joiners each participant is spared
        about 40 posts of 50 KB to canonicalize and verify)."""
        message = item.get("message")
        if not isinstance(message, dict) or message.get("kind") != "tree-path":
            return False
        body = message.get("body")
        paths = body.get("paths") if isinstance(body, dict) else None
        return not isinstance(paths, dict) or self.sdk.device_id not in paths

    async def _flush_outbox(self) -> None:
        """Send the outbox, in order, one sender at a time; after a reconnection, at most
        RESEND_BURST posts at once, then RESEND_RATE a second (the relay refuses more than
        its post rate allows). Each post sent waits in ``_unconfirmed`` until the board
        shows it."""
        if self._flushing:
            return  # the sender at work takes what was queued behind it
        self._flushing, sent = True, 0
        try:
            while self._outbox:
                post, ws = self._outbox[0], self._ws
                try:
                    await ws.send(post.text)
                except websockets.ConnectionClosed:
                    if self._ws is ws:
                        return  # the reader reconnects, then sends again
                    continue  # it reconnected meanwhile (and queued the unconfirmed first)
                self._outbox.popleft()
                post.sends += 1
                self._unconfirmed.append(post)
                if len(self._unconfirmed) > MAX_UNCONFIRMED_POSTS:  # the board stopped echoing
                    self._unconfirmed.popleft()
                sent += 1
                if post.sends > 1 and sent % RESEND_BURST == 0:
                    await asyncio.sleep(RESEND_BURST / RESEND_RATE)
        finally:
            self._flushing = False

    async def _process(self) -> None:
        """Board messages, in order, a batch at a time: the posters' user keys for the
        batch come in one request, and one bad message never stops the others."""
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < BOARD_BATCH and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            messages: list[BoardMessage] = []
            for raw in batch:
                try:
                    message = self._parse(raw)
                except Exception as exc:  # one bad message must not end the meeting for us
                    self._emit(BadMessage(error=type(exc).__name__))
                    continue
                if message is not None:
                    messages.append(message)
            messages = [m for m in messages if not self._deferrable(m)]
            await self._handle(messages)

    async def _handle(self, messages: list[BoardMessage]) -> None:
        await self._learn_users(messages)
        for message in messages:
            try:
                if self._deferred and self._names_me(message):
                    await self._flush_deferred()  # presence first: we may manage next
                key = await self._poster_key(message)
                if key is not None:
                    await self._deliver(message, key)
                if self._deferred and self._may_manage():
                    await self._flush_deferred()
            except Exception as exc:
                _log.warning("meeting %s: a board message failed", self.config.meeting_id,
                             exc_info=True)  # fmt: skip
                self._emit(BadMessage(error=type(exc).__name__))

    def _may_manage(self) -> bool:
        """True if this device is, or may become, the meeting's manager: it then follows
        who is present from every announce and leave."""
        s = self.session
        return s.user in s.admins or s.user in (s.config.host, s.manager)

    def _names_me(self, m: BoardMessage) -> bool:
        me = self.session.user
        if m.kind not in ("start", "manager"):
            return False
        admins = m.body.get("admins")
        return me in (m.body.get("manager"), m.body.get("host")) or (
            isinstance(admins, list) and me in admins
        )

    def _deferrable(self, m: BoardMessage) -> bool:
        """Keep a participant's announce or leave aside (a device that will not manage the
        meeting only needs the roster, which the manager's posts carry): at 1,000
        participants this saves each of them checking 1,000 certificates and signatures."""
        s = self.session
        if (
            m.kind not in _PARTICIPANT_KINDS
            or self._may_manage()
            or m.user in (s.user, s.config.host)
            or m.user in s.admins
        ):
            return False
        if m.kind == "announce":
            self._deferred[m.user] = [m]  # its earlier posts no longer matter
        elif m.kind == "leave" and len(self._deferred.get(m.user, ())) < 8:
            self._deferred.setdefault(m.user, []).append(m)
        return True  # (a roster request is only the manager's business)

    async def _flush_deferred(self) -> None:
        """The participants' posts kept aside, checked and handled now, each user's in order."""
        kept, self._deferred = self._deferred, {}
        await self._handle([m for posts in kept.values() for m in posts])

    async def _deliver(self, message: BoardMessage, key: VerifyingKey) -> None:
        await self._locked(lambda now: self.session.receive(message, key, now))

    def _parse(self, data: dict[str, Any]) -> BoardMessage | None:
        if data.get("type") == "error":
            retry = data.get("retry_after")
            self._emit(
                ChannelError(
                    str(data.get("code", "")),
                    str(data.get("detail", "")),
                    float(retry) if isinstance(retry, int | float) else None,
                )
            )
            return None
        if "message" not in data:
            return None
        return BoardMessage.from_json(json.dumps(data["message"]))

    async def _learn_users(self, messages: list[BoardMessage]) -> None:
        """Fetch, in one request, the keys of the users whose devices' cards we must check
        (kept for the meeting: a user's key is pinned, a change is refused)."""
        wanted = sorted(
            {
                m.user
                for m in messages
                if m.kind == "announce"
                and (m.user, m.device) not in self._card_keys
                and m.user not in self._user_keys
                and isinstance(m.body.get("card"), dict)
            }
        )
        if not wanted:
            return
        found = await self._retrying(lambda: self.sdk.find_user_keys(wanted))
        for user in wanted:
            pinned = found.get(user)
            self._user_keys[user] = (
                VerifyingKey.from_bytes(pinned.signing_key) if pinned is not None else None
            )

    async def _poster_key(self, message: BoardMessage) -> VerifyingKey | None:
        """The posting device's key: known already, from the card its announce carries
        (checked against the user's pinned key), or, for a manager's post, looked up."""
        if message.kind in _CONTROL_KINDS:
            return await self._sender_key(message)
        # Keyed by user and device: a card naming another user's device id binds that id
        # for its own user only (anyone may certify any id with their own key).
        known = self._card_keys.get((message.user, message.device))
        card = message.body.get("card")
        if message.kind == "announce" and isinstance(card, dict) and card:
            # Every announce's card is checked (not only the first): the session takes the
            # device's PRE key from it, to seal the device its key-tree path.
            key = self._check_card(message, card)
            if key is None or (known is not None and known != key):
                return None
            known = self._card_keys[message.user, message.device] = key
        if known is not None:
            return known
        return await self._sender_key(message)

    def _check_card(self, message: BoardMessage, card: dict[str, Any]) -> VerifyingKey | None:
        user_key = self._user_keys.get(message.user)
        if user_key is None:
            return None
        try:
            signing = b64d(card["signing_key"], "signing_key")
            public = b64d(card["public_key"], "public_key")
            user_key.verify(
                DEVICE_CERT_LABEL,
                device_certificate_message(message.device, signing, public),
                b64d(card["certificate"], "certificate"),
            )
            return VerifyingKey.from_bytes(signing)
        except (SignatureError, MalformedInputError, KeyError, TypeError):
            self._emit(BadMessage(device=message.device))
            return None

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, again after a transient failure (the service unreachable, failing
        or shedding load: 5xx, 429), backing off; a refusal (4xx) or a check that fails
        here (an SdkError: a revoked device, a bad certificate) is not retried."""
        delay = RETRY_SECONDS
        while True:
            try:
                return await call()
            except ServiceRefusedError as exc:
                if exc.status < 500 and exc.status != 429:
                    raise  # a refusal: asking again changes nothing
            except NetworkError:
                pass  # the key service unreachable
            self._emit(Retrying(delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _sender_key(self, message: BoardMessage) -> VerifyingKey | None:
        """The posting device's key, trusted only through its certificate and pinned user.
        At most one look-up per message; failures are remembered, so junk device ids on
        the board cost a bounded number of requests (see MAX_UNKNOWN_DEVICES_PER_USER)."""
        now = self._now()
        cached = self._keys.get(message.device)
        if cached is None or now - cached[0] > KEY_CACHE_SECONDS:
            if self._lookup_refused(message, now):
                return None
            try:
                info = await self._retrying(
                    lambda: self.sdk._call("GET", f"/v1/devices/{quote(message.device)}")
                )
                key = await self._retrying(lambda: self.sdk._certified(info))  # not if lost
            except (SdkError, ServiceRefusedError, KeyError, TypeError, ValueError):
                self._failed_devices[message.device] = now
                self._failed_users.setdefault(message.user, []).append(now)
                self._emit(BadMessage(device=message.device))
                return None
            cached = self._keys[message.device] = (now, str(info["user_id"]), key)
        _, user, key = cached
        return key if user == message.user else None

    def _lookup_refused(self, message: BoardMessage, now: float) -> bool:
        """True if this device failed recently, or its user has posted from too many
        unknown devices: no request is made for it."""
        failed_at = self._failed_devices.get(message.device)
        if failed_at is not None and now - failed_at < FAILED_LOOKUP_SECONDS:
            return True
        recent = [
            t for t in self._failed_users.get(message.user, []) if now - t < FAILED_LOOKUP_SECONDS
        ]
        self._failed_users[message.user] = recent
        if len(self._failed_devices) > 4096:  # forget the oldest: memory stays bounded
            cutoff = sorted(self._failed_devices.values())[-2048]
            self._failed_devices = {d: t for d, t in self._failed_devices.items() if t >= cutoff}
        return len(recent) >= MAX_UNKNOWN_DEVICES_PER_USER

    # --- actions ---------------------------------------------------------------------

    async def _run(self, actions: list[Action]) -> None:
        for action in actions:
            await self._do(action)

    async def _do(self, action: Action) -> None:
        if isinstance(action, Post):
            text = '{"type":"post","message":' + action.message.to_json() + "}"
            self._outbox.append(_OwnPost(action.message.seq, text))  # behind any waiting
            await self._flush_outbox()
        elif isinstance(action, KeyServiceCall):
            result, error = await self._key_service(action)  # the lock is held by our caller
            await self._run(self.session.key_service_reply(action.id, result, error, self._now()))
        elif isinstance(action, InstallMediaKey):
            self._install(action)
        elif isinstance(action, RetireMediaKeys):
            if self.session.state in ("ended", "left"):
                for epoch in self.receiver.epochs:
                    self.receiver.retire(epoch)
                self._sender = self._next_sender = None
                for timer in self._export_timers:
                    timer.cancel()
                self._export_timers.clear()
                for epoch in sorted(self._exported):
                    self._retire_exported(epoch)
        elif isinstance(action, CallMeAt):
            self._schedule(action.when)
        elif isinstance(action, Notify):
            event = action.event
            if isinstance(event, RosterRecovered) and self.session._sk is not None:
                # The key was installed while the roster was unknown (no sender indices,
                # no sender of ours): install it again with the roster.
                self.receiver.retire(event.epoch)
                self._install(InstallMediaKey(event.epoch, self.session._sk))
            self._emit(event)
        elif isinstance(action, RotateDeviceKey):
            with contextlib.suppress(SdkError, ServiceRefusedError):
                self._emit(DeviceRotated(await self.sdk.rotate_device()))

    def _install(self, action: InstallMediaKey) -> None:
        now = self._now()
        roster = list(self.session.roster)
        self._rosters[action.epoch] = roster
        self.receiver.install(action.epoch, action.session_key, now, senders=len(roster))
        if self.sdk.user_id not in roster:
            self._export(action, roster, at_once=False)
            return
        sender = Sender(
            action.session_key, action.epoch, roster.index(self.sdk.user_id), suite=self._suite
        )
        ratcheted = (
            action.epoch > 0 and self._sender is not None and self._sender.epoch == action.epoch - 1
        )
        if self._sender is None or ratcheted:
            self._sender, self._next_sender = sender, None  # everyone has it already
        else:
            self._next_sender = (now + self._switch_delay, sender)  # let it reach the others
        self._export(action, roster, at_once=self._sender is sender)

    # --- key export --------------------------------------------------------------------

    def _export(self, action: InstallMediaKey, roster: list[str], *, at_once: bool) -> None:
        """Hand the key provider every sender's key of this epoch, then (at once, or after
        the switch delay, as our own sender switches) the key this device sends with; the
        older epochs it holds are retired after the grace period, as the receiver's are."""
        provider = self._key_provider
        if provider is None:
            return
        epoch, me, own = action.epoch, self.sdk.user_id, None
        for index, user in enumerate(roster):
            key = SenderKey(
                epoch=epoch,
                sender=user,
                index=index,
                kid=kid_for(epoch, index),
                base_key=sender_base_key(action.session_key, epoch, index, self._suite),
                suite=self._suite,
                own=user == me,
            )
            self._to_provider(provider.set_key, key)
            if key.own:
                own = key
        for old in sorted(e for e in self._exported if e < epoch):
            self._later(self._grace, self._retire_exported, old)
        self._exported.add(epoch)
        if own is not None:
            if at_once:
                self._send_with(own)
            else:
                self._later(self._switch_delay, self._send_with, own)

    def _later(self, delay: float, call: Callable[[_T], None], arg: _T) -> None:
        self._export_timers = [t for t in self._export_timers if not t.cancelled()]
        self._export_timers.append(self._loop.call_later(delay, call, arg))

    def _send_with(self, key: SenderKey) -> None:
        fresh = key.epoch > self._send_epoch and key.epoch in self._exported  # not retired
        if self._key_provider is not None and fresh:
            self._send_epoch = key.epoch
            self._to_provider(self._key_provider.set_send_key, key)

    def _retire_exported(self, epoch: int) -> None:
        if self._key_provider is not None and epoch in self._exported:
            self._exported.discard(epoch)
            self._to_provider(self._key_provider.retire_epoch, epoch)

    @staticmethod
    def _to_provider(method: Callable[[_T], None], arg: _T) -> None:
        """A failing key provider is the application's bug: logged, and the meeting goes
        on (the provider's keys may then lag; the message names the method only)."""
        try:
            method(arg)
        except Exception:
            _log.exception("the key provider's %s failed", getattr(method, "__name__", "?"))

    def _schedule(self, when: float) -> None:
        """Wake the session at ``when``. An earlier wake-up already set stays: one batch of
        actions may ask for several times, and waking early is harmless (the session acts
        only on deadlines that have passed, then asks again)."""
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()

        def fire() -> None:
            self._timer = None
            self._spawn(self._fire())

        self._timer = self._loop.call_at(when, fire)

    async def _fire(self) -> None:
        try:
            await self._locked(self.session.timer)
        except Exception as exc:  # a bug: said, not swallowed with the task
            _log.exception("meeting %s: the session's timer failed", self.config.meeting_id)
            self._emit(InternalError(error=type(exc).__name__))

    async def _key_service(
        self, action: KeyServiceCall
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Make the session's call; (result, None) or (None, an error code)."""
        call, sdk = action.call, self.sdk
        try:
            match call:
                case CreateGroup():
                    return {
                        "public_key": await sdk.create_group(call.group, forward_only=True)
                    }, None
                case AddMembers():
                    return {"results": await sdk.add_members(call.group, list(call.users))}, None
                case AddMember():
                    await sdk.add_member(call.group, call.user)
                case BanMember():
                    await sdk.ban_member(call.group, call.user)
                case LiftBan():
                    await sdk.lift_ban(call.group, call.user)
                case ClaimManager():
                    await sdk.claim_group_management(call.group)
                case RemoveMember():
                    await sdk.remove_member(call.group, call.user)
                case AddAdmin():
                    await sdk.add_admin(call.group, call.user)
                case RemoveAdmin():
                    await sdk.remove_admin(call.group, call.user)
                case Preapprove():
                    await sdk.preapprove(call.group, list(call.users))
                case DeleteGroup():
                    await sdk.delete_group(call.group)
                case GroupMembers():
                    return {"members": (await sdk.group(call.group)).members}, None
                case RegisterValue():
                    await sdk.register_group_value(
                        call.group, call.edek, members=list(call.members)
                    )
                case OpenEnvelope():
                    target = Target.group(call.group)
                    return {"data": await sdk.decrypt_unmanaged(call.envelope, 0, target)}, None
                case OpenPath():
                    # Sealed by the manager to this device's key (large meetings): opened here.
                    return {"data": sdk._open_sealed_to_device(call.envelope, call.sealer)}, None
                case _:
                    assert_never(call)
        except ServiceRefusedError as exc:
            return None, exc.code
        except NetworkError:  # (before SdkError, its base)
            return None, "unreachable"  # the session retries as for any failed call
        except SdkError as exc:
            return None, f"sdk:{type(exc).__name__}"
        except (DecryptionError, MalformedInputError, SignatureError):
            return None, "decryption_failed"
        return {}, None

    def security_code(self) -> str | None:
        return self.session.security_code()

    def __repr__(self) -> str:
        return f"MeetingClient({self.sdk.user_id} in {self.config.meeting_id})"
