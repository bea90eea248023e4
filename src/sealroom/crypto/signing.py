"""Ed25519 signing keys, with labelled messages and pinned verification.

A signature only counts when the caller names the signer it expects: :func:`verify_pinned`
first compares the carried public key with the pinned one in constant time, then checks
the signature. A value that merely carries its own public key proves nothing.

Signing uses pyca/cryptography (OpenSSL); verification uses libsodium (PyNaCl), which does
the same RFC 8032 check in half the time and is stricter: it also refuses public keys and
signature points of small order and non-canonical encodings, which OpenSSL lets through.
Every signature OpenSSL's verification refuses, libsodium refuses too.
"""

from __future__ import annotations

import hmac
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from sealroom.crypto.secret import Secret
from sealroom.errors import MalformedInputError, SignatureError

__all__ = ["SIGNATURE_BYTES", "VERIFYING_KEY_BYTES", "SigningKey", "VerifyingKey", "verify_pinned"]

VERIFYING_KEY_BYTES: Final[int] = 32
SIGNATURE_BYTES: Final[int] = 64


def _framed(label: bytes, message: bytes) -> bytes:
    return len(label).to_bytes(1, "big") + label + message


class VerifyingKey:
    """An Ed25519 public key."""

    __slots__ = ("_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != VERIFYING_KEY_BYTES:
            raise MalformedInputError(
                f"verifying key: expected {VERIFYING_KEY_BYTES} bytes, got {len(raw)}"
            )
        self._raw = bytes(raw)
        self._key = VerifyKey(self._raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyingKey:
        return cls(data)

    def to_bytes(self) -> bytes:
        return self._raw

    def verify(self, label: bytes, message: bytes, signature: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is ours over (label, message)."""
        if len(signature) != SIGNATURE_BYTES:
            raise SignatureError("signature has the wrong length")
        try:
            self._key.verify(_framed(label, message), bytes(signature))
        except (CryptoError, ValueError):
            raise SignatureError("signature does not verify") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyingKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"VerifyingKey({self._raw.hex()[:16]}…)"


class SigningKey(Secret):
    """An Ed25519 private key. Its raw 32 bytes leave only via ``expose_secret_bytes``."""

    __slots__ = ("_key", "_verifying")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise MalformedInputError(f"signing key: expected 32 bytes, got {len(secret)}")
        super().__init__(secret)
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(secret))
        self._verifying = VerifyingKey(
            self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )

    @classmethod
    def generate(cls) -> SigningKey:
        raw = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        return cls(raw)

    @property
    def verifying_key(self) -> VerifyingKey:
        return self._verifying

    def sign(self, label: bytes, message: bytes) -> bytes:
        return self._key.sign(_framed(label, message))


def verify_pinned(
    pinned: VerifyingKey, carried: bytes, label: bytes, message: bytes, signature: bytes
) -> None:
    """Check that ``carried`` is the pinned signer and that it signed (label, message)."""
    if not hmac.compare_digest(pinned.to_bytes(), bytes(carried)):
        raise SignatureError("signed by a key other than the pinned signer")
    pinned.verify(label, message, signature)
