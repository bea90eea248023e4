"""Property tests: decoders only ever raise MalformedInputError, round trips hold, and any
single-byte change to a ciphertext makes decryption fail."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealroom.crypto.envelope import Envelope, open_with_key, seal
from sealroom.crypto.escrow import EscrowSecret, open_private_key
from sealroom.crypto.pairing import G1, G2, GT, Scalar
from sealroom.crypto.pre import (
    EncryptedValue,
    PrivateKey,
    PublicKey,
    TransformKey,
    decrypt,
    encrypt,
    generate_plaintext,
    transform,
)
from sealroom.errors import DecryptionError, MalformedInputError

from .conftest import World

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

DECODERS: list[Callable[[bytes], object]] = [
    EncryptedValue.from_bytes,
    TransformKey.from_bytes,
    Envelope.from_bytes,
    PublicKey.from_bytes,
    PrivateKey.from_secret_bytes,
    G1.from_bytes,
    G2.from_bytes,
    GT.from_bytes,
    Scalar.from_bytes,
    lambda b: open_private_key(b, EscrowSecret(b"x")),
]


@pytest.mark.parametrize("decode", DECODERS)
@SETTINGS
@given(data=st.binary(max_size=1400))
def test_decoders_raise_only_malformed_input(
    decode: Callable[[bytes], object], data: bytes
) -> None:
    with contextlib.suppress(MalformedInputError):
        decode(data)


@SETTINGS
@given(hops=st.integers(min_value=0, max_value=2))
def test_roundtrip_any_hop_count(world: World, hops: int) -> None:
    pt = generate_plaintext()
    value = encrypt(pt, world.group_pub, world.admin)
    keys = [world.group_to_user, world.user_to_device][:hops]
    if keys:
        value = transform(value, keys, world.service)
    priv = [world.group_priv, None, world.device_priv][hops]
    if priv is None:
        from .conftest import augmented_user_private

        priv = augmented_user_private(world)
    value = EncryptedValue.from_bytes(value.to_bytes())
    got = decrypt(
        value,
        priv,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )
    assert got == pt


@SETTINGS
@given(data=st.binary(max_size=2048), object_id=st.binary(max_size=64))
def test_envelope_roundtrip(world: World, data: bytes, object_id: bytes) -> None:
    env = Envelope.from_bytes(seal(data, object_id, [world.group_pub], world.admin).to_bytes())
    assert (
        open_with_key(env, env.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
        == data
    )


@pytest.fixture(scope="module")
def level1_raw(world: World) -> bytes:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    return transform(ev, [world.group_to_user], world.service).to_bytes()


@SETTINGS
@given(st.data())
def test_any_byte_change_fails(world: World, level1_raw: bytes, data: st.DataObject) -> None:
    from .conftest import augmented_user_private

    pos = data.draw(st.integers(min_value=0, max_value=len(level1_raw) - 1))
    delta = data.draw(st.integers(min_value=1, max_value=255))
    bad = bytearray(level1_raw)
    bad[pos] ^= delta
    priv = augmented_user_private(world)
    with pytest.raises((MalformedInputError, DecryptionError)):
        _parse_and_decrypt(world, priv, bytes(bad))


def _parse_and_decrypt(world: World, priv: PrivateKey, raw: bytes) -> None:
    decrypt(
        EncryptedValue.from_bytes(raw),
        priv,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )
