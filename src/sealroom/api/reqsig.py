"""Device request signatures.

Once registered, a device signs every request with its Ed25519 key. The signature covers
the method, the path, the raw query string, a SHA-256 digest of the body, a timestamp, a
nonce and the device id, under its own label. The key service rejects stale timestamps
(more than :data:`MAX_SKEW_SECONDS` away), nonces it has seen, and unknown or revoked
devices.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import MalformedInputError

__all__ = [
    "HEADER_DEVICE",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "LABEL",
    "MAX_SKEW_SECONDS",
    "NONCE_BYTES",
    "SignedRequest",
    "canonical",
    "parse_headers",
    "sign_request",
]

LABEL: Final[bytes] = b"sealroom/v1/sig/request"
HEADER_DEVICE: Final[str] = "sealroom-device"
HEADER_TIMESTAMP: Final[str] = "sealroom-timestamp"
HEADER_NONCE: Final[str] = "sealroom-nonce"
HEADER_SIGNATURE: Final[str] = "sealroom-signature"
MAX_SKEW_SECONDS: Final[int] = 120
NONCE_BYTES: Final[int] = 16


def canonical(
    method: str, path: str, query: str, body: bytes, *, timestamp: int, nonce: bytes, device: str
) -> bytes:
    """The exact bytes a device signs."""
    lines = [
        "sealroom-request-v1",
        method.upper(),
        path,
        query,
        hashlib.sha256(body).hexdigest(),
        str(timestamp),
        b64e(nonce),
        device,
    ]
    return "\n".join(lines).encode("utf-8")


def sign_request(
    key: SigningKey,
    device_id: str,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes,
    now: float,
    nonce: bytes | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    ts = int(now)
    message = canonical(method, path, query, body, timestamp=ts, nonce=nonce, device=device_id)
    sig = key.sign(LABEL, message)
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_NONCE: b64e(nonce),
        HEADER_SIGNATURE: b64e(sig),
    }


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The authentication headers of a request, parsed but not yet verified."""

    device_id: str
    timestamp: int
    nonce: bytes
    signature: bytes

    def verify(self, key: VerifyingKey, method: str, path: str, query: str, body: bytes) -> None:
        """Raise SignatureError unless ``key`` signed exactly this request."""
        message = canonical(
            method,
            path,
            query,
            body,
            timestamp=self.timestamp,
            nonce=self.nonce,
            device=self.device_id,
        )
        key.verify(LABEL, message, self.signature)


def parse_headers(headers: Mapping[str, str]) -> SignedRequest | None:
    """None if the request carries no device signature; MalformedInputError if it is broken."""
    device = headers.get(HEADER_DEVICE)
    if device is None:
        return None
    ts_text = headers.get(HEADER_TIMESTAMP, "")
    if not re.fullmatch(r"[0-9]{1,12}", ts_text):
        raise MalformedInputError("request signature: bad timestamp")
    if not 1 <= len(device) <= 64:
        raise MalformedInputError("request signature: bad device id")
    nonce = b64d(headers.get(HEADER_NONCE, ""), "nonce", max_bytes=NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise MalformedInputError(f"request signature: nonce must be {NONCE_BYTES} bytes")
    signature = b64d(headers.get(HEADER_SIGNATURE, ""), "signature", max_bytes=64)
    return SignedRequest(device, int(ts_text), nonce, signature)
