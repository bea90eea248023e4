"""Base64url (no padding) for every binary field in the JSON API, decoded strictly."""

from __future__ import annotations

import base64
import binascii
import re

from sealroom.errors import MalformedInputError

__all__ = ["b64d", "b64e"]

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: object, what: str = "field", *, max_bytes: int = 1 << 20) -> bytes:
    """Decode base64url without padding; anything else is a MalformedInputError."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise MalformedInputError(f"{what}: expected base64url text")
    if len(text) * 3 // 4 > max_bytes:
        raise MalformedInputError(f"{what}: longer than {max_bytes} bytes")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInputError(f"{what}: expected base64url text") from None
    if b64e(raw) != text:
        raise MalformedInputError(f"{what}: non-canonical base64url")
    return raw
