"""Envelope encryption: data sealed under a fresh AES-256-GCM DEK, the DEK's source
PRE-encrypted once to each recipient (the EDEKs).

Wire format v1: version, tag 0x41, object id (u16 length + bytes), nonce (12),
ciphertext (u32 length + bytes, including the 16-byte tag), EDEK count (u16), then each
EDEK as u32 length + an :class:`~sealroom.crypto.pre.EncryptedValue`, then the sealer's
Ed25519 key (32) and its signature (64) over everything before it. The associated data
binds the label, the version and the object id, so a sealed blob cannot be replayed under
another id. A recipient knows the DEK and can seal other content under the same id, but
only under its own signature: :func:`open_envelope` takes the sealer the opener expects, so
nobody can forge content in another device's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.crypto import labels, pairing
from sealroom.crypto.pre import (
    EncryptedValue,
    Plaintext,
    PrivateKey,
    PublicKey,
    decrypt,
    derive_symmetric_key,
    encrypt,
    generate_plaintext,
)
from sealroom.crypto.signing import (
    SIGNATURE_BYTES,
    VERIFYING_KEY_BYTES,
    SigningKey,
    VerifyingKey,
    verify_pinned,
)
from sealroom.crypto.wire import TAG_ENVELOPE, WIRE_VERSION, Reader, header, u16, u32
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError

__all__ = [
    "MAX_OBJECT_ID_BYTES",
    "MAX_RECIPIENTS",
    "NONCE_BYTES",
    "Envelope",
    "encode_edeks",
    "open_envelope",
    "open_with_key",
    "read_edeks",
    "seal",
]

NONCE_BYTES: Final[int] = 12
MAX_OBJECT_ID_BYTES: Final[int] = 1024
MAX_RECIPIENTS: Final[int] = 4096


def encode_edeks(edeks: Sequence[EncryptedValue]) -> bytes:
    """u16 count, then each EDEK as u32 length + encrypted value."""
    parts = [u16(len(edeks))]
    for edek in edeks:
        raw = edek.to_bytes()
        parts += [u32(len(raw)), raw]
    return b"".join(parts)


def read_edeks(r: Reader, what: str) -> tuple[EncryptedValue, ...]:
    """The inverse of :func:`encode_edeks`: 1 to MAX_RECIPIENTS EDEKs."""
    count = r.u16()
    if not 1 <= count <= MAX_RECIPIENTS:
        raise MalformedInputError(f"{what}: {count} EDEKs is out of range")
    return tuple(EncryptedValue.from_bytes(r.take(r.u32())) for _ in range(count))


def _aad(object_id: bytes) -> bytes:
    return labels.ENVELOPE_AAD + bytes((WIRE_VERSION,)) + u16(len(object_id)) + object_id


@dataclass(frozen=True, slots=True)
class Envelope:
    """Sealed data plus one EDEK per recipient, signed by the sealer."""

    object_id: bytes
    nonce: bytes
    ciphertext: bytes
    edeks: tuple[EncryptedValue, ...]
    signer: bytes = b""
    signature: bytes = b""

    def signed_part(self) -> bytes:
        """Everything the signature covers: all fields before it, the signer included."""
        parts = [
            header(TAG_ENVELOPE),
            u16(len(self.object_id)),
            self.object_id,
            self.nonce,
            u32(len(self.ciphertext)),
            self.ciphertext,
            encode_edeks(self.edeks),
            self.signer,
        ]
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        r = Reader(data, "envelope")
        r.expect_header(TAG_ENVELOPE)
        id_len = r.u16()
        if id_len > MAX_OBJECT_ID_BYTES:
            raise MalformedInputError(f"envelope: object id of {id_len} bytes is too long")
        object_id = r.take(id_len)
        nonce = r.take(NONCE_BYTES)
        ciphertext = r.take(r.u32())
        if len(ciphertext) < 16:
            raise MalformedInputError("envelope: ciphertext shorter than its tag")
        edeks = read_edeks(r, "envelope")
        signer = r.take(VERIFYING_KEY_BYTES)
        signature = r.take(SIGNATURE_BYTES)
        r.finish()
        return cls(object_id, nonce, ciphertext, edeks, signer, signature)


def seal(
    data: bytes, object_id: bytes, recipients: Sequence[PublicKey], signer: SigningKey
) -> Envelope:
    """Encrypt ``data`` under a fresh DEK and wrap the DEK's source to every recipient."""
    if not recipients:
        raise ValueError("an envelope needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"an envelope takes at most {MAX_RECIPIENTS} recipients")
    if len(object_id) > MAX_OBJECT_ID_BYTES:
        raise ValueError(f"object id is longer than {MAX_OBJECT_ID_BYTES} bytes")
    source = generate_plaintext()
    dek = derive_symmetric_key(source)
    nonce = pairing._urandom(NONCE_BYTES)
    ciphertext = AESGCM(dek.expose_secret_bytes()).encrypt(nonce, data, _aad(object_id))
    edeks = tuple(encrypt(source, recipient, signer) for recipient in recipients)
    unsigned = Envelope(bytes(object_id), nonce, ciphertext, edeks, signer.verifying_key.to_bytes())
    signature = signer.sign(labels.SIG_ENVELOPE, unsigned.signed_part())
    return Envelope(unsigned.object_id, nonce, ciphertext, edeks, unsigned.signer, signature)


def open_envelope(envelope: Envelope, source: Plaintext, *, sealer: VerifyingKey) -> bytes:
    """Check the pinned sealer's signature, then decrypt with the unwrapped ``source``."""
    try:
        verify_pinned(
            sealer,
            envelope.signer,
            labels.SIG_ENVELOPE,
            envelope.signed_part(),
            envelope.signature,
        )
    except SignatureError:
        raise DecryptionError() from None
    dek = derive_symmetric_key(source)
    try:
        return AESGCM(dek.expose_secret_bytes()).decrypt(
            envelope.nonce, envelope.ciphertext, _aad(envelope.object_id)
        )
    except InvalidTag:
        raise DecryptionError() from None


def open_with_key(
    envelope: Envelope,
    edek: EncryptedValue,
    private_key: PrivateKey,
    *,
    origin_signer: VerifyingKey,
    transformer: VerifyingKey | None = None,
) -> bytes:
    """Unwrap ``edek`` (one of the envelope's, possibly transformed) and decrypt the data.

    The EDEK's origin and the envelope must both be signed by ``origin_signer``.
    """
    source = decrypt(edek, private_key, origin_signer=origin_signer, transformer=transformer)
    return open_envelope(envelope, source, sealer=origin_signer)
