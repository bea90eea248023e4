"""Every hash, KDF and signature use has its own label. All of them live here."""

from __future__ import annotations

from typing import Final

_PREFIX: Final[bytes] = b"sealroom/v1/"

HASH_TO_G2: Final[bytes] = _PREFIX + b"pre/hash-to-g2"
AUTH_HASH: Final[bytes] = _PREFIX + b"pre/auth-hash"
DEK: Final[bytes] = _PREFIX + b"pre/dek"
DERIVED_PRIVATE_KEY: Final[bytes] = _PREFIX + b"pre/derived-private-key"

SIG_ORIGIN: Final[bytes] = _PREFIX + b"sig/encrypted-value-origin"
SIG_TRANSFORMED: Final[bytes] = _PREFIX + b"sig/encrypted-value-transformed"
SIG_TRANSFORM_KEY: Final[bytes] = _PREFIX + b"sig/transform-key"
SIG_ENVELOPE: Final[bytes] = _PREFIX + b"sig/envelope"
SIG_STREAM_HEADER: Final[bytes] = _PREFIX + b"sig/stream-header"
SIG_STREAM_TRAILER: Final[bytes] = _PREFIX + b"sig/stream-trailer"

ENVELOPE_AAD: Final[bytes] = _PREFIX + b"envelope/aad"
ESCROW_AAD: Final[bytes] = _PREFIX + b"escrow/aad"
ESCROW_KEY: Final[bytes] = _PREFIX + b"escrow/key"
ESCROW_CHECK: Final[bytes] = _PREFIX + b"escrow/check"
ESCROW_SPLIT: Final[bytes] = _PREFIX + b"escrow/split-secret"
USER_SIGNING_SEED: Final[bytes] = _PREFIX + b"user/signing-key-seed"
VALUE_FINGERPRINT: Final[bytes] = _PREFIX + b"keyservice/value-fingerprint"
MEMBERS_DIGEST: Final[bytes] = _PREFIX + b"group/members-digest"

ALL: Final[tuple[bytes, ...]] = (
    HASH_TO_G2,
    AUTH_HASH,
    DEK,
    DERIVED_PRIVATE_KEY,
    SIG_ORIGIN,
    SIG_TRANSFORMED,
    SIG_TRANSFORM_KEY,
    SIG_ENVELOPE,
    SIG_STREAM_HEADER,
    SIG_STREAM_TRAILER,
    ENVELOPE_AAD,
    ESCROW_AAD,
    ESCROW_KEY,
    ESCROW_CHECK,
    ESCROW_SPLIT,
    USER_SIGNING_SEED,
    VALUE_FINGERPRINT,
    MEMBERS_DIGEST,
)
