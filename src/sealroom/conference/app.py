"""The conferencing service's ASGI app: ``/v1/meetings/{id}/channel`` (WebSocket).

A client connects with a JWT (audience ``sealroom-conference``): in ``Authorization: Bearer``,
or, from a browser, in ``Sec-WebSocket-Protocol`` or the first message; a browser page must
come from an allowed origin (see :mod:`.handshake`).
It first receives the meeting's board history, then live traffic; its media subscription is
live before the first board message reaches it. If the broker fails (or a relay stream
ends), the socket is closed with 1011; a client whose socket takes longer than SEND_TIMEOUT
to accept one message (it stopped reading, or is far too slow) is dropped, so it cannot pin
the connection's tasks and subscriptions.

* text frames ``{"type": "board", "message": {...}}`` carry board messages;
* binary frames carry SFrame media from the other participants (never echoed).

A client posts ``{"type": "post", "message": {...}}`` (its ``user`` must be the JWT's
subject and its ``meeting`` this one) and sends media as binary frames (an SFrame header
is required, at most :data:`MAX_FRAME_BYTES`). Anything malformed or oversize is answered
with ``{"type": "error", "code": ...}`` and dropped; the meeting goes on. The relay holds no
key and cannot read a frame.

The board keeps control posts apart from participants' posts, and refuses control posts
from anyone the board does not name (:mod:`sealroom.conference.board`); what one client may
post, and how many meetings a user may open, is bounded (:mod:`sealroom.conference.quota`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from sealroom.api.origins import OriginPolicy
from sealroom.conference import asyncapi
from sealroom.conference.board import (
    POSITION,
    BoardLimits,
    BoardLostError,
    BoardPost,
    BoardRefusedError,
)
from sealroom.conference.bus import Bus, InProcessBus
from sealroom.conference.handshake import open_channel
from sealroom.conference.quota import MeetingWindow, OpenChannels, TokenBucket
from sealroom.errors import MalformedInputError
from sealroom.keyservice.jwt_auth import JwksSource, JwtVerifier
from sealroom.media.sframe import SFrameError, decode_header
from sealroom.meeting.messages import MAX_MESSAGE_BYTES, BoardMessage
from sealroom.ops import metrics
from sealroom.ops.http import ABORT, RequestMiddleware, problem_body
from sealroom.ops.limits import ClientLimiter

__all__ = [
    "AUDIENCE",
    "BATCH_BYTES",
    "BATCH_QUEUE",
    "CLOSE_TIMEOUT",
    "MAX_FRAME_BYTES",
    "SEND_TIMEOUT",
    "SUBSCRIBE_TIMEOUT",
    "ConferenceSettings",
    "create_conference_app",
]

log = logging.getLogger("sealroom.conference")
AUDIENCE: Final[str] = "sealroom-conference"
MAX_FRAME_BYTES: Final[int] = 256 * 1024
SUBSCRIBE_TIMEOUT: Final[float] = 10.0  # seconds for the broker to confirm a subscription
SEND_TIMEOUT: Final[float] = 10.0
#: With ``?batch=1``, board messages go several to a frame, up to about this many bytes...
BATCH_BYTES: Final[int] = 256 * 1024
#: ...from at most this many read ahead of the client.
BATCH_QUEUE: Final[int] = 4096  # a client stuck this long in one send is dropped
CLOSE_TIMEOUT: Final[float] = 2.0


class _ClientGoneError(Exception):
    """The client left, or stopped reading: nothing more to send it."""


_MEETING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


@functools.lru_cache(maxsize=64)
def _path_devices(message: str) -> frozenset[str] | None:
    """The devices a ``tree-path`` post seals paths to (None: another kind). Parsed once
    per process for every connection of the meeting."""
    if '"tree-path"' not in message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    body = data.get("body") if isinstance(data, dict) else None
    if data.get("kind") != "tree-path" or not isinstance(body, dict):
        return None
    paths = body.get("paths")
    return frozenset(paths) if isinstance(paths, dict) else frozenset()


@dataclass(frozen=True)
class ConferenceSettings:
    jwt_issuer: str = "sealroom-dev-idp"
    jwt_audience: str = AUDIENCE
    max_frame_bytes: int = MAX_FRAME_BYTES
    #: Web origins whose pages may open the channel (see :mod:`.handshake`).
    allowed_origins: tuple[str, ...] = ()
    board: BoardLimits = field(default_factory=BoardLimits)
    """The lanes' caps; the bus must be built with the same (``limits=settings.board``)."""
    post_rate: float = 50.0
    """Posts a second one connection may keep up (a manager posts a key per join)."""
    post_burst: int = 500
    """Posts one connection may make at once before ``post_rate`` applies."""
    meetings_per_user: int = 32
    """Distinct meetings one user may open channels to within ``meetings_window`` (per
    service process)."""
    meetings_window: float = 600.0
    """Seconds; a channel beyond ``meetings_per_user`` gets ``too_many_meetings`` (4429)."""
    channels_per_user: int = 16
    """Channels one user may hold open at once (per service process): a few devices, each in
    a meeting or two. Beyond it: ``too_many_channels`` (4429)."""
    connect_rate: float = 20.0
    """Channel handshakes a second from one client address (per service process); beyond
    it the handshake is answered ``429`` with ``Retry-After``. Many participants may share
    one address (an office's NAT), hence the generous burst."""
    connect_burst: int = 1000
    """Handshakes one address may make at once before ``connect_rate`` applies."""


def create_conference_app(
    settings: ConferenceSettings, jwks: JwksSource, bus: Bus | None = None
) -> Starlette:
    verifier = JwtVerifier(jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    the_bus: Bus = bus or InProcessBus(settings.board)
    if the_bus.limits != settings.board:
        raise ValueError("the bus and the settings disagree on the board's limits")
    origins = OriginPolicy(settings.allowed_origins)
    opened = MeetingWindow(settings.meetings_per_user, settings.meetings_window)
    channels = OpenChannels(settings.channels_per_user)

    async def channel(ws: WebSocket) -> None:
        meeting = ws.path_params["id"]
        after = ws.query_params.get("after")  # resume: only what follows this position
        batch = ws.query_params.get("batch") == "1"  # board messages several to a frame
        # ``?device=``: the connection's device, so that a key-tree path sealed to another
        # device is not sent (bandwidth only: paths are sealed, and a device that names
        # another one just misses its own).
        device = ws.query_params.get("device")
        if device is not None and not _DEVICE_ID.fullmatch(device):
            device = None

        def for_us(message: str) -> bool:
            devices = _path_devices(message) if device is not None else None
            return devices is None or device in devices

        user = await open_channel(
            ws,
            meeting_ok=bool(_MEETING_ID.fullmatch(meeting))
            and (after is None or bool(POSITION.fullmatch(after))),
            policy=origins,
            verify=lambda token: verifier.verify(token, time.time()).subject,
        )
        if user is None:
            return
        conn = uuid.uuid4().hex
        log.info("channel opened", extra={"meeting": meeting, "user": user})
        posts = TokenBucket(settings.post_rate, settings.post_burst, time.monotonic())
        lock = asyncio.Lock()  # one sender at a time; the close happens under it too
        media_ready = asyncio.Event()
        finished = asyncio.Event()  # set once this connection is over, for whatever reason

        def is_open() -> bool:
            return ws.application_state != WebSocketState.DISCONNECTED

        loop = asyncio.get_running_loop()
        sending_since = [0.0]  # when the send in progress began; 0 when none is

        async def send(data: str | bytes) -> None:
            """Send under the lock (the watchdog drops a client stuck in one)."""
            async with lock:
                if not is_open():
                    raise _ClientGoneError
                sending_since[0] = loop.time()
                try:
                    if isinstance(data, str):
                        await ws.send_text(data)
                    else:
                        await ws.send_bytes(data)
                except WebSocketDisconnect:
                    raise _ClientGoneError from None
                finally:
                    sending_since[0] = 0.0

        async def watchdog() -> None:
            """A client stuck in one send for SEND_TIMEOUT is gone: a timer per connection,
            not one per frame, keeps this off the relay's hot path."""
            while True:
                await asyncio.sleep(SEND_TIMEOUT / 4)
                began = sending_since[0]
                if began and loop.time() - began > SEND_TIMEOUT:
                    log.warning(
                        "a client stopped reading; dropped",
                        extra={"meeting": meeting, "user": user, "reason": "send_timeout"},
                    )
                    # Not a close: that would wait, socket and unsent frames held, for a
                    # peer that does not read. Drop the connection at once.
                    abort = ws.scope.get(ABORT)
                    if abort is not None:
                        abort()
                    finished.set()
                    return

        async def broken(direction: str, reason: str, exc: Exception | None) -> None:
            """The broker failed: say so to the client (1011) instead of going quiet."""
            what = type(exc).__name__ if exc is not None else "ended"
            metrics.BROKER_ERRORS.labels(type(the_bus).__name__, direction).inc()
            log.warning(
                "%s relay failed: %s",
                direction,
                what,
                extra={"meeting": meeting, "code": reason},
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT), lock:
                    if is_open():
                        await ws.close(code=1011, reason=reason)

        async def lost(exc: BoardLostError) -> None:
            """The board is gone (the broker lost it, or a client resumed on one that
            expired): say so, never go quiet. 4410: the client must join again."""
            log.error("board lost", extra={"meeting": meeting, "code": "board_lost"})
            detail = str(exc) or "this meeting's board is gone"
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT), lock:
                    if is_open():
                        await ws.send_text(
                            json.dumps({"type": "error", "code": "board_lost", "detail": detail})
                        )
                        await ws.close(code=4410, reason="board_lost")

        async def send_board() -> None:
            if not batch:
                async for pos, message in the_bus.board(meeting, after):
                    if for_us(message):
                        await send(f'{{"type":"board","pos":"{pos}","message":{message}}}')
                return
            waiting: asyncio.Queue[tuple[str, str]] = asyncio.Queue(BATCH_QUEUE)

            async def pump() -> None:
                async for item in the_bus.board(meeting, after):
                    if for_us(item[1]):
                        await waiting.put(item)

            reader = asyncio.create_task(pump())
            first: asyncio.Future[tuple[str, str]] | None = None
            try:
                while True:
                    first = asyncio.ensure_future(waiting.get())
                    await asyncio.wait({first, reader}, return_when="FIRST_COMPLETED")
                    if not first.done():
                        first.cancel()
                        reader.result()  # the board's stream ended: its error, if any
                        return
                    items, size = [first.result()], len(first.result()[1])
                    while not waiting.empty() and size < BATCH_BYTES:
                        items.append(waiting.get_nowait())
                        size += len(items[-1][1])
                    body = ",".join(f'{{"pos":"{p}","message":{m}}}' for p, m in items)
                    await send('{"type":"board","batch":[' + body + "]}")
            finally:
                if first is not None:
                    first.cancel()  # (a get() left pending would be destroyed with the loop)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

        async def send_media() -> None:
            async for sender, frame in the_bus.media(meeting, media_ready):
                if sender != conn:
                    await send(frame)
                    metrics.FRAMES_RELAYED.inc()

        async def relay(direction: str, forward: Callable[[], Awaitable[None]]) -> None:
            """One direction of the relay; whichever way it ends, the connection ends."""
            failure: Exception | None = None
            try:
                await forward()  # a broker's stream never ends by itself while all is well
            except _ClientGoneError:
                finished.set()
                return
            except BoardLostError as exc:
                await lost(exc)
                finished.set()
                return
            except Exception as exc:
                failure = exc
            if is_open():
                await broken(direction, "relay_failed", failure)
            finished.set()

        async def receive() -> None:
            """The client's posts and frames, until it leaves."""
            try:
                while is_open():
                    event = await ws.receive()
                    if event["type"] == "websocket.disconnect":
                        return
                    try:
                        await _handle(event)
                    except _ClientGoneError:
                        return
                    except Exception as exc:  # the broker refused a publish
                        await broken("publish", "relay_failed", exc)
                        return
            except WebSocketDisconnect:
                return
            finally:
                finished.set()

        async def _handle(event: Mapping[str, Any]) -> None:
            if event.get("bytes") is not None:
                frame: bytes = event["bytes"]
                if len(frame) > settings.max_frame_bytes:
                    metrics.FRAMES_DROPPED.labels("refused").inc()
                    await error("frame_too_large", f"at most {settings.max_frame_bytes}")
                    return
                try:
                    decode_header(frame)
                except SFrameError:
                    metrics.FRAMES_DROPPED.labels("refused").inc()
                    await error("malformed_frame", "not an SFrame frame")
                    return
                await the_bus.send_media(meeting, conn, frame)
            elif event.get("text") is not None:
                now = time.monotonic()
                if not posts.take(now):
                    metrics.RATE_LIMITED.labels("conference", "post").inc()
                    await error(
                        "rate_limited",
                        f"at most {settings.post_rate:g} posts a second",
                        retry_after=round(posts.wait(now), 3),
                    )
                    return
                problem = await _post(the_bus, meeting, user, event["text"])
                if problem is not None:
                    await error(*problem)

        async def error(code: str, detail: str, **more: object) -> None:
            log.info("refused", extra={"meeting": meeting, "user": user, "code": code})
            await send(json.dumps({"type": "error", "code": code, "detail": detail, **more}))

        refusal = _over_quota(settings, opened, channels, user, meeting)
        if refusal is not None:
            metrics.CHANNEL_CONNECTIONS.labels(refusal["code"]).inc()
            log.info(
                "channel refused", extra={"meeting": meeting, "user": user, "code": refusal["code"]}
            )
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps({"type": "error", **refusal}))
                await ws.close(code=4429, reason=refusal["code"])
            return
        metrics.CHANNEL_CONNECTIONS.labels("accepted").inc()
        metrics.CHANNELS_OPEN.inc()
        # Media first: once a client sees any board message, frames sent to it arrive.
        media_task = asyncio.create_task(relay("media", send_media))
        ready = asyncio.create_task(media_ready.wait())
        tasks = [media_task, ready]
        try:
            await asyncio.wait(
                {ready, media_task}, timeout=SUBSCRIBE_TIMEOUT, return_when="FIRST_COMPLETED"
            )
            if not media_ready.is_set():
                if not media_task.done():
                    await broken("media", "relay_unavailable", None)
                return
            tasks.append(asyncio.create_task(relay("board", send_board)))
            tasks.append(asyncio.create_task(receive()))
            tasks.append(asyncio.create_task(watchdog()))
            await finished.wait()
        finally:
            channels.close(user)
            metrics.CHANNELS_OPEN.dec()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            log.info("channel closed", extra={"meeting": meeting, "user": user})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def ready(request: Request) -> Response:
        checks = {
            "idp_keys": await asyncio.to_thread(jwks.ready),
            "broker": await the_bus.ready(),
        }
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    spec = asyncapi.document()

    async def asyncapi_route(request: Request) -> Response:
        return JSONResponse(spec)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        code, title = _HTTP_PROBLEMS.get(status, ("malformed_input", "The request is malformed"))
        return Response(
            problem_body(code, status, title, headers.get("Allow", "")),
            status_code=status,
            headers=headers,
            media_type="application/problem+json",
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await the_bus.close()

    app = Starlette(
        routes=[
            WebSocketRoute("/v1/meetings/{id}/channel", channel),
            Route("/healthz", health),
            Route("/readyz", ready),
            Route("/metrics", metrics_route),
            Route("/asyncapi.json", asyncapi_route),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.add_middleware(
        RequestMiddleware,
        service="conference",
        limiter=ClientLimiter(settings.connect_rate, settings.connect_burst),
    )
    app.state.bus = the_bus
    return app


_HTTP_PROBLEMS: Final[dict[int, tuple[str, str]]] = {
    404: ("not_found", "No such object"),
    405: ("method_not_allowed", "Method not allowed"),
}


def _over_quota(
    settings: ConferenceSettings,
    opened: MeetingWindow,
    channels: OpenChannels,
    user: str,
    meeting: str,
) -> dict[str, str] | None:
    """Count a new channel, or say why it is refused (``code``, ``detail``)."""
    if not opened.allow(user, meeting, time.monotonic()):
        return {
            "code": "too_many_meetings",
            "detail": f"at most {settings.meetings_per_user} meetings per "
            f"{settings.meetings_window:g} s",
        }
    if not channels.open(user):
        return {
            "code": "too_many_channels",
            "detail": f"at most {settings.channels_per_user} channels open at once",
        }
    return None


async def _post(bus: Bus, meeting: str, user: str, text: str) -> tuple[str, str] | None:
    """Validate and publish a client's post; a (code, detail) problem otherwise."""
    if len(text) > MAX_MESSAGE_BYTES + 64:
        return "message_too_large", f"at most {MAX_MESSAGE_BYTES} bytes"
    try:
        envelope: Any = json.loads(text)
        if not isinstance(envelope, dict) or envelope.get("type") != "post":
            return "malformed_message", "expected {type: post, message}"
        message = BoardMessage.from_json(json.dumps(envelope.get("message")))
    except (ValueError, RecursionError, MalformedInputError) as exc:
        return "malformed_message", str(exc)[:200]
    if message.meeting != meeting:
        return "wrong_meeting", "the message names another meeting"
    if message.user != user:
        return "wrong_user", "the message names another user than the token"
    post = BoardPost.of(message)
    try:
        await bus.post(post)
    except BoardRefusedError as exc:
        metrics.BOARD_POSTS.labels(post.lane, exc.code).inc()
        return exc.code, exc.detail
    metrics.BOARD_POSTS.labels(post.lane, "ok").inc()
    return None
