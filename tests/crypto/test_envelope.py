"""Envelope encryption: one DEK, EDEKs to several recipients, AAD bound to the object id."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sealroom.crypto.envelope import Envelope, open_envelope, open_with_key, seal
from sealroom.crypto.pre import decrypt, generate_plaintext, transform
from sealroom.errors import DecryptionError, MalformedInputError

from .conftest import World


def test_seal_and_open_for_each_recipient(world: World) -> None:
    env = seal(b"agenda", b"meeting-1/agenda", [world.group_pub, world.device_pub], world.admin)
    pin = world.admin.verifying_key
    assert open_with_key(env, env.edeks[0], world.group_priv, origin_signer=pin) == b"agenda"
    assert open_with_key(env, env.edeks[1], world.device_priv, origin_signer=pin) == b"agenda"


def test_open_after_two_hops(world: World) -> None:
    env = seal(b"x" * 1024, b"file-7", [world.group_pub], world.admin)
    edek = transform(env.edeks[0], [world.group_to_user, world.user_to_device], world.service)
    got = open_with_key(
        env,
        edek,
        world.device_priv,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )
    assert got == b"x" * 1024


def test_roundtrip_encoding(world: World) -> None:
    env = seal(b"", b"", [world.group_pub, world.user_pub], world.admin)
    raw = env.to_bytes()
    assert Envelope.from_bytes(raw) == env or Envelope.from_bytes(raw).to_bytes() == raw


def test_object_id_is_bound(world: World) -> None:
    env = seal(b"secret", b"id-1", [world.group_pub], world.admin)
    source = decrypt(env.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
    assert open_envelope(env, source) == b"secret"
    with pytest.raises(DecryptionError):
        open_envelope(replace(env, object_id=b"id-2"), source)


def test_tampered_ciphertext_or_nonce_fails(world: World) -> None:
    env = seal(b"secret", b"id", [world.group_pub], world.admin)
    source = decrypt(env.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)
    flipped = bytes([env.ciphertext[0] ^ 1]) + env.ciphertext[1:]
    with pytest.raises(DecryptionError):
        open_envelope(replace(env, ciphertext=flipped), source)
    with pytest.raises(DecryptionError):
        open_envelope(replace(env, nonce=bytes(12)), source)


def test_wrong_source_fails(world: World) -> None:
    env = seal(b"secret", b"id", [world.group_pub], world.admin)
    with pytest.raises(DecryptionError):
        open_envelope(env, generate_plaintext())


def test_swapped_edek_from_another_envelope_fails(world: World) -> None:
    a = seal(b"a", b"id", [world.group_pub], world.admin)
    b = seal(b"b", b"id", [world.group_pub], world.admin)
    with pytest.raises(DecryptionError):
        open_with_key(a, b.edeks[0], world.group_priv, origin_signer=world.admin.verifying_key)


def test_truncated_or_extended_rejected(world: World) -> None:
    raw = seal(b"data", b"id", [world.group_pub], world.admin).to_bytes()
    for bad in (raw[:-1], raw + b"\x00", raw[:5], b""):
        with pytest.raises(MalformedInputError):
            Envelope.from_bytes(bad)


def test_input_limits(world: World) -> None:
    with pytest.raises(ValueError, match="at least one"):
        seal(b"", b"id", [], world.admin)
    with pytest.raises(ValueError, match="object id"):
        seal(b"", b"x" * 2000, [world.group_pub], world.admin)
