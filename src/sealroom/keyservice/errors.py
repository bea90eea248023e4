"""Service errors: a stable code, an HTTP status and a message that holds no secret.

They are rendered as RFC 9457 problem details: ``{"type", "title", "status", "code",
"detail"}``. Clients branch on ``code``; the list below is part of the API.
"""

from __future__ import annotations

from typing import Final

from sealroom.errors import SealroomError
from sealroom.keyservice.models import Problem

__all__ = ["CODES", "ServiceError"]

#: code → (HTTP status, title)
CODES: Final[dict[str, tuple[int, str]]] = {
    "malformed_input": (400, "The request is malformed"),
    "body_too_large": (413, "The request body is too large"),
    "unauthenticated": (401, "Authentication is required"),
    "invalid_token": (401, "The identity token is invalid"),
    "token_expired": (401, "The identity token has expired"),
    "token_not_fresh": (401, "The identity token was issued too long ago or in the future"),
    "wrong_audience": (401, "The identity token is for another service"),
    "unknown_device": (401, "The device is not registered"),
    "stale_request": (401, "The request timestamp is too far from the server's clock"),
    "replayed_request": (401, "The request nonce was already used"),
    "bad_signature": (401, "The request signature does not verify"),
    "device_revoked": (403, "The device is revoked"),
    "forbidden": (403, "The caller may not do this"),
    "origin_not_allowed": (403, "Browser pages from this origin may not call the service"),
    "not_member": (403, "The caller is not a member"),
    "not_admin": (403, "The caller is not an admin of the group"),
    "before_membership": (403, "The value was not registered after the caller joined the group"),
    "not_manager": (403, "Only the meeting group's manager may change it"),
    "banned": (403, "The user was removed from the meeting group until the manager admits it"),
    "not_found": (404, "No such object"),
    "conflict": (409, "The object already exists or is in the way"),
    "membership_mismatch": (409, "The group's members are not the ones the manager named"),
    "method_not_allowed": (405, "Method not allowed"),
    "moved": (307, "The resource is at the path in Location"),
    "rate_limited": (429, "Too many requests"),
    "overloaded": (503, "The service is at capacity; retry after the time in Retry-After"),
    "unavailable": (503, "A service the key service needs is unreachable; retry later"),
    "internal": (500, "Internal error"),
}


class ServiceError(SealroomError):
    """A refusal with a stable code."""

    def __init__(self, code: str, detail: str = "", *, retry_after: float | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.status, self.title = CODES[code]
        self.detail = detail
        #: Seconds for a ``Retry-After`` header (429 and 503).
        self.retry_after = retry_after
        #: Set once the refusal has its audit entry, so that it is recorded exactly once.
        self.audited = False

    def problem(self) -> Problem:
        return {
            "type": f"urn:sealroom:error:{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail or self.title,
        }
