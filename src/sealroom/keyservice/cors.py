"""Browser access to the key service: CORS for the configured origins, refusal for others.

An ASGI middleware around the API. A request without an ``Origin`` header passes untouched
(the SDK, a server, a same-origin navigation). A request whose origin is listed in
``Settings.cors_origins``, or is the service's own (``sealroom serve`` hands the web client
out from here, so it needs no CORS at all), passes with ``Access-Control-Allow-Origin``
naming that origin; a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from
it is answered here with the methods and headers the API uses. Any other origin gets
``403 origin_not_allowed`` and no CORS header at all, preflight or not, before the request
reaches a handler. No cookies are used, so credentials are never allowed.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealroom.api.origins import OriginPolicy, own_origin
from sealroom.api.reqsig import HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP
from sealroom.keyservice.errors import ServiceError

__all__ = [
    "ALLOWED_HEADERS",
    "ALLOWED_METHODS",
    "MAX_AGE",
    "CorsMiddleware",
]

ALLOWED_METHODS: Final[str] = "GET, POST, PUT, DELETE"
ALLOWED_HEADERS: Final[str] = ", ".join(
    [
        "authorization",
        "content-type",
        HEADER_DEVICE,
        HEADER_TIMESTAMP,
        HEADER_NONCE,
        HEADER_SIGNATURE,
    ]
)
MAX_AGE: Final[str] = "600"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        own = own_origin(scope["scheme"], headers)
        if not self.policy.allows(origin, own):
            await _refuse(send)
            return
        cors = [(b"vary", b"Origin")]
        if origin != own:
            cors.append((b"access-control-allow-origin", origin.encode("latin-1")))
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = [
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": cors + preflight})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _refuse(send: Send) -> None:
    exc = ServiceError("origin_not_allowed", "this origin may not call the key service")
    body = json.dumps(exc.problem()).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"vary", b"Origin"),
    ]
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": exc.status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
