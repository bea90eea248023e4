"""Structured logs: one JSON object a line, each with the request id of the request that
caused it (``X-Request-Id``, returned in every response).

Log records carry no secret: handlers log codes, routes, ids and exception types, never
headers, bodies or tokens (``tests/test_no_secrets_in_ops_logs.py`` checks the whole
output of a flow). :class:`OncePerOutage` keeps a failing dependency (the IdP, the broker,
the database) to one line when it fails and one when it is back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import secrets
import threading
import time
from typing import Any, Final

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "OncePerOutage",
    "configure",
    "logging_config",
    "new_request_id",
    "request_id",
    "set_request_id",
]

REQUEST_ID_HEADER: Final[str] = "x-request-id"
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sealroom_request_id", default=None
)
_GOOD_ID: Final = re.compile(r"[A-Za-z0-9._:-]{8,64}")
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD: Final[frozenset[str]] = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's terminal colours
)


def new_request_id(offered: str | None = None) -> str:
    """The caller's ``X-Request-Id`` if it is a plain token of 8-64 characters (a proxy's
    id, kept so that logs join up), else a fresh random one."""
    if offered is not None and _GOOD_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _REQUEST_ID.set(value)


def request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", ...extra, "error"}`` on one line.
    An exception is logged as its type and message only (no traceback, no locals)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            out["service"] = self.service
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id":
                out[key] = (
                    value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
                )
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return json.dumps(out, separators=(",", ":"))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or request_id()
        line = super().format(record)
        return f"{line} [{rid}]" if rid else line


def logging_config(service: str, level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict for ``service`` (uvicorn takes it as
    ``log_config``, so every worker process logs the same way)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service}
        if fmt == "json"
        else {"()": _TextFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
    }
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "sealroom": {"handlers": ["default"], "level": upper, "propagate": False},
            # uvicorn's own lines (start, stop, errors); requests are logged by
            # sealroom.access with the request id, so uvicorn's access log stays off.
            "uvicorn.error": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def configure(service: str, level: str = "info", fmt: str = "json") -> None:
    logging.config.dictConfig(logging_config(service, level, fmt))


class OncePerOutage:
    """Log a dependency's failure once, when it starts failing, and once when it works
    again: a down IdP or broker makes one warning, not one per request."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger, self.what = logger, what
        self._lock = threading.Lock()
        self._failing_since: float | None = None

    def failed(self, exc: BaseException | str) -> None:
        reason = exc if isinstance(exc, str) else type(exc).__name__
        with self._lock:
            if self._failing_since is not None:
                return
            self._failing_since = time.monotonic()
        self.logger.error("%s unreachable (%s)", self.what, reason, extra={"dependency": self.what})

    def ok(self) -> None:
        with self._lock:
            since, self._failing_since = self._failing_since, None
        if since is not None:
            self.logger.warning(
                "%s reachable again after %.1f s",
                self.what,
                time.monotonic() - since,
                extra={"dependency": self.what},
            )

    @property
    def failing(self) -> bool:
        return self._failing_since is not None
