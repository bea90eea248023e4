"""Opening a conference channel: from which page, with which token.

Browsers cannot set an ``Authorization`` header on a WebSocket, so the JWT may arrive in
one of three ways, tried in this order:

1. ``Authorization: Bearer <JWT>`` (the Python SDK, servers);
2. the ``Sec-WebSocket-Protocol`` header: the client offers :data:`SUBPROTOCOL` and
   ``sealroom.bearer.<JWT>``; the server selects :data:`SUBPROTOCOL` (the token is never
   echoed back);
3. the first message once the socket is open: ``{"type": "auth", "token": "<JWT>"}``,
   within :data:`AUTH_TIMEOUT` seconds, from a client that offered :data:`SUBPROTOCOL` with
   no token (this keeps the token out of every header a proxy might log). Nothing is relayed
   before it. A client that offers neither a token nor the subprotocol is refused at once.

Every browser sends ``Origin`` with a WebSocket handshake. A handshake that carries one
must name an allowed origin (``ConferenceSettings.allowed_origins``, or the service's own);
any other page is refused before the socket opens (HTTP 403), whatever its token. A client
without ``Origin`` is not a browser page and is judged by its token alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from sealroom.api.origins import OriginPolicy, own_origin
from sealroom.keyservice.errors import ServiceError

__all__ = ["AUTH_TIMEOUT", "BEARER_PROTOCOL_PREFIX", "SUBPROTOCOL", "open_channel"]

SUBPROTOCOL: Final[str] = "sealroom.v1"
BEARER_PROTOCOL_PREFIX: Final[str] = "sealroom.bearer."
AUTH_TIMEOUT: Final[float] = 10.0
_MAX_AUTH_MESSAGE: Final[int] = 16 * 1024


def _header_token(ws: WebSocket) -> str | None:
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    offered: list[str] = ws.scope.get("subprotocols", [])
    for protocol in offered:
        if protocol.startswith(BEARER_PROTOCOL_PREFIX):
            return protocol[len(BEARER_PROTOCOL_PREFIX) :]
    return None


async def _first_message_token(ws: WebSocket) -> str:
    try:
        async with asyncio.timeout(AUTH_TIMEOUT):
            event = await ws.receive()
    except TimeoutError:
        raise ServiceError("unauthenticated", "no token in time") from None
    text = event.get("text")
    if event["type"] != "websocket.receive" or not isinstance(text, str):
        raise ServiceError("unauthenticated", "expected {type: auth, token}")
    if len(text) > _MAX_AUTH_MESSAGE:
        raise ServiceError("unauthenticated", "auth message too large")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ServiceError("unauthenticated", "expected {type: auth, token}") from None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise ServiceError("unauthenticated", "expected {type: auth, token}")
    token = message.get("token")
    if not isinstance(token, str):
        raise ServiceError("unauthenticated", "expected {type: auth, token}")
    return token


def _close_code(exc: ServiceError) -> int:
    """4401 unauthenticated, 4403 refused, 1013 (try again later) when the IdP's keys are
    unavailable, 4400 otherwise."""
    if exc.status >= 500:
        return 1013
    return 4401 if exc.status == 401 else 4403 if exc.status == 403 else 4400


async def open_channel(
    ws: WebSocket, *, meeting_ok: bool, policy: OriginPolicy, verify: Callable[[str], str]
) -> str | None:
    """Accept the socket and return the token's user, or refuse it and return None.

    ``verify`` maps a JWT to its subject or raises :class:`ServiceError`.
    """
    origin = ws.headers.get("origin")
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", []) else None
    try:
        if origin is not None and not policy.allows(origin, own_origin(ws.url.scheme, ws.headers)):
            raise ServiceError("origin_not_allowed")
        if not meeting_ok:
            raise ServiceError("malformed_input", "bad meeting id")
        token = _header_token(ws)
        if token is None and subprotocol is None:
            raise ServiceError("unauthenticated")
        user = verify(token) if token is not None else None
    except ServiceError as exc:
        await ws.close(code=_close_code(exc), reason=exc.code)  # before accepting: HTTP 403
        return None
    await ws.accept(subprotocol=subprotocol)
    if user is not None:
        return user
    try:
        return verify(await _first_message_token(ws))
    except WebSocketDisconnect:
        return None
    except ServiceError as exc:
        await ws.close(code=_close_code(exc), reason=exc.code)
        return None
