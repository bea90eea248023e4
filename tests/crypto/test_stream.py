"""Chunked streams: round trips at every size, and every tampering is caught."""

from __future__ import annotations

import io

import pytest

from sealroom.crypto.pre import decrypt
from sealroom.crypto.stream import StreamHeader, open_stream, read_header, seal_stream
from sealroom.errors import DecryptionError

from .conftest import World

CHUNK = 1000


def _seal(world: World, data: bytes, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    seal_stream(io.BytesIO(data), out, b"rec-1", [world.group_pub], world.admin, chunk_size=chunk)
    return out.getvalue()


def _open(world: World, sealed: bytes) -> bytes:
    src = io.BytesIO(sealed)
    head, raw = read_header(src)
    source = decrypt(head.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
    out = io.BytesIO()
    n = open_stream(src, out, (head, raw), source, sealer=world.admin.verifying_key)
    assert n == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 10_000])
def test_roundtrip(world: World, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    assert _open(world, _seal(world, data)) == data


def _records(sealed: bytes) -> tuple[bytes, list[bytes], bytes]:
    n = int.from_bytes(sealed[:4], "big")
    head, pos, records = sealed[: 4 + n], 4 + n, []
    while pos < len(sealed) - 64:
        size = int.from_bytes(sealed[pos : pos + 4], "big")
        records.append(sealed[pos : pos + 4 + size])
        pos += 4 + size
    return head, records, sealed[pos:]


def test_every_chunk_is_authenticated(world: World) -> None:
    sealed = _seal(world, bytes(2500))
    head, records, trailer = _records(sealed)
    for i in range(len(records)):
        bad = list(records)
        bad[i] = bad[i][:-1] + bytes([bad[i][-1] ^ 1])
        with pytest.raises(DecryptionError):
            _open(world, head + b"".join(bad) + trailer)


def test_reordering_truncation_and_extension_fail(world: World) -> None:
    head, records, trailer = _records(_seal(world, bytes(2500)))
    assert len(records) == 3
    cases = [
        head + records[1] + records[0] + records[2] + trailer,  # reordered
        head + records[0] + records[1] + trailer,  # final chunk dropped
        head + records[0] + records[1],  # truncated before the final chunk
        head + b"".join(records) + trailer + b"\x00",  # data after the trailer
        head + b"".join(records),  # no trailer
        head + records[0] + records[0] + records[1] + records[2] + trailer,  # duplicated
    ]
    for case in cases:
        with pytest.raises(DecryptionError):
            _open(world, case)


def test_a_recipient_cannot_forge_chunks_in_the_sealers_name(world: World) -> None:
    # A recipient knows the DEK and can make chunks that decrypt; the trailer stops it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from sealroom.crypto.pre import derive_symmetric_key
    from sealroom.crypto.stream import _aad, _nonce

    sealed = _seal(world, b"genuine")
    head_raw, _records_unused, trailer = _records(sealed)
    head = StreamHeader.from_bytes(head_raw[4:])
    source = decrypt(head.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
    aead = AESGCM(derive_symmetric_key(source).expose_secret_bytes())
    import hashlib

    digest = hashlib.sha256(head_raw[4:]).digest()
    forged = aead.encrypt(_nonce(head.prefix, 0, True), b"forged!", _aad(digest, 0, True))
    record = len(forged).to_bytes(4, "big") + forged
    with pytest.raises(DecryptionError):
        _open(world, head_raw + record + trailer)


def test_wrong_sealer_is_refused(world: World) -> None:
    sealed = _seal(world, b"x")
    src = io.BytesIO(sealed)
    head, raw = read_header(src)
    source = decrypt(head.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
    with pytest.raises(DecryptionError):
        open_stream(src, io.BytesIO(), (head, raw), source, sealer=world.mallory.verifying_key)
