"""Escrow of a PRE private key under a secret, with a slow KDF and AES-256-GCM.

The KDF and its parameters travel in the blob:

* Argon2id (RFC 9106 §4, second recommended option: t=3, p=4, m=64 MiB), or
* PBKDF2-HMAC-SHA256 with at least 600,000 iterations.

The KDF output is split by HKDF into an encryption key and a check value. The check
value tells a wrong password (:class:`~sealroom.errors.WrongSecretError`) apart from a
corrupted blob (:class:`~sealroom.errors.MalformedInputError` or
:class:`~sealroom.errors.DecryptionError`); it costs an attacker a full KDF per guess,
like the ciphertext itself.

In the basic (split-trust) mode, the secret is :func:`combine_split_secret` of two random
128-bit halves, one held by the key service and one by the conferencing provider.

Wire format v1: version, tag 0x51, KDF id (u8: 1 Argon2id, 2 PBKDF2), parameters (Argon2id:
t u32, m KiB u32, p u8; PBKDF2: iterations u32), salt (16), check (16), nonce (12),
ciphertext of the 34-byte private key encoding + 16-byte tag (50).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final, Literal

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from sealroom.crypto import labels, pairing
from sealroom.crypto.pre import PrivateKey
from sealroom.crypto.secret import Secret
from sealroom.crypto.wire import TAG_ESCROW, Reader, header, u32
from sealroom.errors import DecryptionError, MalformedInputError, WrongSecretError

__all__ = [
    "CHECK_BYTES",
    "HALF_BYTES",
    "KDF_ARGON2ID",
    "KDF_PBKDF2",
    "MIN_PBKDF2_ITERATIONS",
    "NONCE_BYTES",
    "SALT_BYTES",
    "Argon2idParams",
    "EscrowSecret",
    "Pbkdf2Params",
    "combine_split_secret",
    "open_private_key",
    "seal_private_key",
]

KDF_ARGON2ID: Final[int] = 1
KDF_PBKDF2: Final[int] = 2
SALT_BYTES: Final[int] = 16
CHECK_BYTES: Final[int] = 16
NONCE_BYTES: Final[int] = 12
HALF_BYTES: Final[int] = 16
MIN_PBKDF2_ITERATIONS: Final[int] = 600_000
_PRIVATE_KEY_BYTES: Final[int] = 34
_CIPHERTEXT_BYTES: Final[int] = _PRIVATE_KEY_BYTES + 16


@dataclass(frozen=True, slots=True)
class Argon2idParams:
    """Argon2id cost parameters (defaults: RFC 9106's second recommended option)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def validate(self) -> None:
        if not (1 <= self.time_cost <= 64 and 8 * 1024 <= self.memory_kib <= 4 * 1024 * 1024):
            raise MalformedInputError("escrow: Argon2id parameters out of the accepted range")
        if not 1 <= self.parallelism <= 16:
            raise MalformedInputError("escrow: Argon2id parallelism out of the accepted range")


@dataclass(frozen=True, slots=True)
class Pbkdf2Params:
    """PBKDF2-HMAC-SHA256 iteration count (at least 600,000)."""

    iterations: int = MIN_PBKDF2_ITERATIONS

    def validate(self) -> None:
        if not MIN_PBKDF2_ITERATIONS <= self.iterations <= 100_000_000:
            raise MalformedInputError("escrow: PBKDF2 iterations out of the accepted range")


class EscrowSecret(Secret):
    """A password or a combined split secret."""

    __slots__ = ()

    @classmethod
    def from_password(cls, password: str) -> EscrowSecret:
        if not password:
            raise ValueError("an empty password is not allowed")
        return cls(password.encode("utf-8"))


def combine_split_secret(service_half: bytes, provider_half: bytes) -> EscrowSecret:
    """Combine the two 128-bit halves of the basic mode into one escrow secret."""
    if len(service_half) != HALF_BYTES or len(provider_half) != HALF_BYTES:
        raise MalformedInputError(f"split secret: each half must be {HALF_BYTES} bytes")
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=labels.ESCROW_SPLIT).derive(
        bytes(service_half) + bytes(provider_half)
    )
    return EscrowSecret(okm)


def _params_bytes(params: Argon2idParams | Pbkdf2Params) -> bytes:
    if isinstance(params, Argon2idParams):
        return (
            bytes((KDF_ARGON2ID,))
            + u32(params.time_cost)
            + u32(params.memory_kib)
            + bytes((params.parallelism,))
        )
    return bytes((KDF_PBKDF2,)) + u32(params.iterations)


def _stretch(secret: EscrowSecret, salt: bytes, params: Argon2idParams | Pbkdf2Params) -> bytes:
    raw = secret.expose_secret_bytes()
    if isinstance(params, Argon2idParams):
        return hash_secret_raw(
            raw,
            salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=32,
            type=Type.ID,
        )
    return PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=salt, iterations=params.iterations
    ).derive(raw)


def _split(stretched: bytes) -> tuple[bytes, bytes]:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=labels.ESCROW_KEY)
    check = HKDF(algorithm=hashes.SHA256(), length=CHECK_BYTES, salt=None, info=labels.ESCROW_CHECK)
    return key.derive(stretched), check.derive(stretched)


def seal_private_key(
    private_key: PrivateKey,
    secret: EscrowSecret,
    kdf: Literal["argon2id", "pbkdf2"] = "argon2id",
    *,
    params: Argon2idParams | Pbkdf2Params | None = None,
) -> bytes:
    """Encrypt ``private_key`` under ``secret``; returns the escrow blob."""
    if params is None:
        params = Argon2idParams() if kdf == "argon2id" else Pbkdf2Params()
    params.validate()
    salt = pairing._urandom(SALT_BYTES)
    nonce = pairing._urandom(NONCE_BYTES)
    key, check = _split(_stretch(secret, salt, params))
    head = header(TAG_ESCROW) + _params_bytes(params) + salt + check + nonce
    ciphertext = AESGCM(key).encrypt(
        nonce, private_key.expose_secret_bytes(), labels.ESCROW_AAD + head
    )
    return head + ciphertext


def _parse(blob: bytes) -> tuple[bytes, Argon2idParams | Pbkdf2Params, bytes, bytes, bytes, bytes]:
    r = Reader(blob, "escrow blob")
    r.expect_header(TAG_ESCROW)
    kdf_id = r.u8()
    params: Argon2idParams | Pbkdf2Params
    if kdf_id == KDF_ARGON2ID:
        params = Argon2idParams(r.u32(), r.u32(), r.u8())
    elif kdf_id == KDF_PBKDF2:
        params = Pbkdf2Params(r.u32())
    else:
        raise MalformedInputError(f"escrow blob: unknown KDF id {kdf_id}")
    params.validate()
    salt, check, nonce = r.take(SALT_BYTES), r.take(CHECK_BYTES), r.take(NONCE_BYTES)
    head = r.consumed()
    ciphertext = r.take(_CIPHERTEXT_BYTES)
    r.finish()
    return head, params, salt, check, nonce, ciphertext


def open_private_key(blob: bytes, secret: EscrowSecret) -> PrivateKey:
    """Recover the private key.

    Raises :class:`WrongSecretError` for a wrong secret, :class:`MalformedInputError` for a
    blob that does not parse, and :class:`DecryptionError` for one that was tampered with.
    """
    head, params, salt, check, nonce, ciphertext = _parse(blob)
    key, expected_check = _split(_stretch(secret, salt, params))
    if not hmac.compare_digest(check, expected_check):
        raise WrongSecretError("the password or secret is wrong")
    try:
        raw = AESGCM(key).decrypt(nonce, ciphertext, labels.ESCROW_AAD + head)
    except InvalidTag:
        raise DecryptionError() from None
    return PrivateKey.from_secret_bytes(raw)
