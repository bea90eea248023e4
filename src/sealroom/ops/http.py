"""The ASGI middleware both services put in front of their routes.

For every request and channel handshake it takes the caller's ``X-Request-Id`` (or makes
one), returns it in the response, and makes it the id of every log line the request causes.
It refuses a client over its rate (by address, before anything else runs) with ``429`` and
``Retry-After``. For HTTP requests it counts the answer in the metrics by route template and
status, and logs one line: ``info`` for an answer or a refusal (with the refusal's
``code``), ``error`` for a 5xx. Health, readiness and metrics requests are logged at
``debug``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealroom.ops import metrics
from sealroom.ops.limits import ClientLimiter, retry_after
from sealroom.ops.logs import REQUEST_ID_HEADER, new_request_id, set_request_id

__all__ = [
    "ABORT",
    "LOG_NOTE",
    "OPS_PATHS",
    "RequestMiddleware",
    "client_address",
    "problem_body",
    "transport_abort",
]

#: Paths that are never rate limited and are logged at debug level.
OPS_PATHS: Final[frozenset[str]] = frozenset({"/healthz", "/readyz", "/metrics"})
#: The scope key of a dict where handlers note what the access line should say (``code``).
LOG_NOTE: Final[str] = "sealroom.log"
#: The scope key of a callable that drops a WebSocket's connection at once, unsent data
#: and all (None when the server does not offer one).
ABORT: Final[str] = "sealroom.abort"

access = logging.getLogger("sealroom.access")


def client_address(scope: Scope) -> str:
    """The client's address (uvicorn has already applied trusted ``X-Forwarded-For``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def transport_abort(send: Send) -> Callable[[], None] | None:
    """A way to abort the connection under ``send``: uvicorn hands the app its protocol's
    bound ``send``, whose ``transport`` can drop the socket without flushing. Closing
    instead would keep the socket, and every byte queued for it, until the peer reads
    them, which a peer that stopped reading never does."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    return abort if callable(abort) else None


def problem_body(code: str, status: int, title: str, detail: str) -> bytes:
    """An RFC 9457 problem document, as the key service's errors render."""
    return json.dumps(
        {
            "type": f"urn:sealroom:error:{code}",
            "title": title,
            "status": status,
            "code": code,
            "detail": detail,
        }
    ).encode()


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        limiter: ClientLimiter | None = None,
        exempt: Iterable[str] = OPS_PATHS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.service, self.limiter = app, service, limiter
        self.exempt = frozenset(exempt)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = new_request_id(headers.get(REQUEST_ID_HEADER))
        token = set_request_id(rid)
        note: dict[str, Any] = {}
        scope[LOG_NOTE] = note
        try:
            if self.limiter is not None and scope["path"] not in self.exempt:
                wait = self.limiter.take(client_address(scope), self.clock())
                if wait > 0:
                    metrics.RATE_LIMITED.labels(self.service, "address").inc()
                    await self._refuse(scope, receive, send, rid, wait)
                    return
            if scope["type"] == "websocket":
                scope[ABORT] = transport_abort(send)
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, rid, note)
        finally:
            set_request_id(None)
            del token

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, rid: str, note: dict[str, Any]
    ) -> None:
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), rid.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route_obj = scope.get("route")
            route = str(getattr(route_obj, "path", "")) or "unmatched"
            method = str(scope.get("method", ""))
            metrics.REQUESTS.labels(self.service, route, method, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(self.service, route, method).observe(elapsed)
            level = logging.ERROR if status >= 500 else logging.INFO
            if scope["path"] in self.exempt and status != 500:
                level = logging.DEBUG  # a probe's 503 is its answer, not a failure
            extra: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 1),
                "client": client_address(scope),
            }
            if "code" in note:
                extra["code"] = note["code"]
            access.log(level, "%s %s %d", method, route, status, extra=extra)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, rid: str, wait: float
    ) -> None:
        body = problem_body(
            "rate_limited",
            429,
            "Too many requests",
            f"at most {self.limiter.rate:g} a second from one client" if self.limiter else "",
        )
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", retry_after(wait).encode()),
            (REQUEST_ID_HEADER.encode(), rid.encode()),
        ]
        access.info(
            "rate limited",
            extra={
                "route": scope["path"] if scope["type"] == "websocket" else "",
                "status": 429,
                "code": "rate_limited",
                "client": client_address(scope),
            },
        )
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 429, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 4429, "reason": "rate_limited"})
