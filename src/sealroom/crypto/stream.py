"""Large objects (recordings, files) as a stream of authenticated chunks.

The data is sealed under a fresh AES-256-GCM DEK whose source is PRE-encrypted to each
recipient, as in :mod:`.envelope`, but in chunks, so memory stays flat whatever the size.
Chunk i is AES-GCM with nonce = prefix(7) ‖ i(4) ‖ final(1) and associated data =
SHA-256(header) ‖ i ‖ final, so a reordered, dropped, duplicated or truncated chunk fails,
and nothing may follow the final chunk. A trailer carries the sealer's Ed25519 signature
over the header digest, the chunk count and a running digest of every ciphertext chunk. A
recipient (who knows the DEK) can seal another stream under the same id, but only under its
own signature, and :func:`open_stream` takes the sealer the opener expects.

Layout: u32 header length, header, then records ``u32 length ‖ chunk ciphertext``, the last
one marked final, then the 64-byte trailer signature. Header v1: version, tag 0x61, object
id (u16 length + bytes), chunk size (u32), nonce prefix (7), EDEK count (u16), each EDEK as
u32 length + encrypted value, sealer key (32), sealer signature (64) over all before it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.crypto import labels, pairing
from sealroom.crypto.envelope import encode_edeks, read_edeks
from sealroom.crypto.pre import (
    EncryptedValue,
    Plaintext,
    PublicKey,
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
from sealroom.crypto.wire import TAG_STREAM, Reader, header, u16, u32
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError

__all__ = [
    "DEFAULT_CHUNK",
    "MAX_CHUNK",
    "MAX_HEADER",
    "StreamHeader",
    "open_stream",
    "read_header",
    "seal_stream",
]

DEFAULT_CHUNK: Final[int] = 64 * 1024
MAX_CHUNK: Final[int] = 16 * 1024 * 1024
MAX_HEADER: Final[int] = 1 << 20
_MAX_CHUNKS: Final[int] = (1 << 32) - 1


@dataclass(frozen=True)
class StreamHeader:
    object_id: bytes
    chunk_size: int
    prefix: bytes
    edeks: tuple[EncryptedValue, ...]
    signer: bytes
    signature: bytes = b""

    def signed_part(self) -> bytes:
        parts = [
            header(TAG_STREAM),
            u16(len(self.object_id)),
            self.object_id,
            u32(self.chunk_size),
            self.prefix,
            encode_edeks(self.edeks),
            self.signer,
        ]
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamHeader:
        r = Reader(data, "stream header")
        r.expect_header(TAG_STREAM)
        object_id = r.take(r.u16())
        chunk_size = r.u32()
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise MalformedInputError("stream header: chunk size out of range")
        prefix = r.take(7)
        edeks = read_edeks(r, "stream header")
        signer, signature = r.take(VERIFYING_KEY_BYTES), r.take(SIGNATURE_BYTES)
        r.finish()
        return cls(object_id, chunk_size, prefix, edeks, signer, signature)


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, final)


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">IB", index, final)


def _read_exact(src: BinaryIO, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        piece = src.read(n - len(out))
        if not piece:
            break
        out += piece
    return bytes(out)


def _chunks(src: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """(chunk, is_final) with one chunk of look-ahead; an empty source yields one final."""
    current = _read_exact(src, size)
    while True:
        following = _read_exact(src, size) if len(current) == size else b""
        final = not following
        yield current, final
        if final:
            return
        current = following


def seal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    object_id: bytes,
    recipients: Sequence[PublicKey],
    signer: SigningKey,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> StreamHeader:
    """Encrypt everything readable from ``src`` into ``dst``, in constant memory."""
    if not recipients:
        raise ValueError("a stream needs at least one recipient")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise ValueError("chunk size out of range")
    source = generate_plaintext()
    aead = AESGCM(derive_symmetric_key(source).expose_secret_bytes())
    edeks = tuple(encrypt(source, r, signer) for r in recipients)
    unsigned = StreamHeader(
        bytes(object_id), chunk_size, pairing._urandom(7), edeks, signer.verifying_key.to_bytes()
    )
    head = StreamHeader(
        unsigned.object_id,
        chunk_size,
        unsigned.prefix,
        edeks,
        unsigned.signer,
        signer.sign(labels.SIG_STREAM_HEADER, unsigned.signed_part()),
    )
    raw_header = head.to_bytes()
    digest = hashlib.sha256(raw_header).digest()
    running = hashlib.sha256()
    dst.write(u32(len(raw_header)) + raw_header)
    count = 0
    for index, (chunk, final) in enumerate(_chunks(src, chunk_size)):
        if index >= _MAX_CHUNKS:
            raise ValueError("stream too long for its chunk counter")
        ct = aead.encrypt(_nonce(head.prefix, index, final), chunk, _aad(digest, index, final))
        running.update(ct)
        dst.write(u32(len(ct)) + ct)
        count = index + 1
    trailer = digest + count.to_bytes(4, "big") + running.digest()
    dst.write(signer.sign(labels.SIG_STREAM_TRAILER, trailer))
    return head


def read_header(src: BinaryIO) -> tuple[StreamHeader, bytes]:
    """The stream's header and its raw bytes (to find the EDEK to unwrap)."""
    length = int.from_bytes(_read_exact(src, 4) or b"\0", "big")
    if not 1 <= length <= MAX_HEADER:
        raise MalformedInputError("stream: header length out of range")
    raw = _read_exact(src, length)
    if len(raw) != length:
        raise MalformedInputError("stream: truncated header")
    return StreamHeader.from_bytes(raw), raw


def open_stream(
    src: BinaryIO,
    dst: BinaryIO,
    header_and_raw: tuple[StreamHeader, bytes],
    source: Plaintext,
    *,
    sealer: VerifyingKey,
) -> int:
    """Decrypt the chunks after the header into ``dst``; returns the bytes written.

    Raises :class:`DecryptionError` for any tampering, truncation, reordering or extension,
    and for a trailer not signed by the pinned ``sealer``. Chunks are written as they
    authenticate, so a caller must discard ``dst`` if this raises.
    """
    head, raw_header = header_and_raw
    try:
        verify_pinned(
            sealer, head.signer, labels.SIG_STREAM_HEADER, head.signed_part(), head.signature
        )
    except SignatureError:
        raise DecryptionError() from None
    aead = AESGCM(derive_symmetric_key(source).expose_secret_bytes())
    digest = hashlib.sha256(raw_header).digest()
    running = hashlib.sha256()
    written, index = 0, 0
    limit = head.chunk_size + 16
    while True:
        size_raw = _read_exact(src, 4)
        if len(size_raw) != 4:
            raise DecryptionError()  # truncated before the final chunk
        size = int.from_bytes(size_raw, "big")
        if not 16 <= size <= limit:
            raise DecryptionError()
        ct = _read_exact(src, size)
        if len(ct) != size:
            raise DecryptionError()
        for final in (False, True):  # the flag is authenticated: exactly one choice opens
            try:
                chunk = aead.decrypt(
                    _nonce(head.prefix, index, final), ct, _aad(digest, index, final)
                )
                break
            except InvalidTag:
                continue
        else:
            raise DecryptionError()
        running.update(ct)
        dst.write(chunk)
        written += len(chunk)
        index += 1
        if final:
            break
    trailer_sig = _read_exact(src, SIGNATURE_BYTES)
    if len(trailer_sig) != SIGNATURE_BYTES or src.read(1):
        raise DecryptionError()  # a missing trailer, or bytes after it
    trailer = digest + index.to_bytes(4, "big") + running.digest()
    try:
        verify_pinned(sealer, head.signer, labels.SIG_STREAM_TRAILER, trailer, trailer_sig)
    except SignatureError:
        raise DecryptionError() from None
    return written
