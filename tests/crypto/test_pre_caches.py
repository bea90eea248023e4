"""What a private key keeps between decryptions: it is exact, bounded and its own.

A value's newest block carries the last transform key's (X, E) unchanged, so a device
unwraps the same temp key from every value under that key; the key keeps h(K) for it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sealroom.crypto import labels, pre
from sealroom.crypto.pairing import GT
from sealroom.crypto.pre import (
    EncryptedValue,
    PrivateKey,
    _transform_signed_part,
    decrypt,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
    transform,
)
from sealroom.errors import DecryptionError

from .conftest import World


def _fresh_device_key(world: World) -> PrivateKey:
    return PrivateKey.from_secret_bytes(world.device_priv.expose_secret_bytes())


def _level2(world: World) -> tuple[pre.Plaintext, EncryptedValue]:
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    return pt, transform(ev, [world.group_to_user, world.user_to_device], world.service)


def _decrypt(world: World, value: EncryptedValue, key: PrivateKey) -> pre.Plaintext:
    return decrypt(
        value,
        key,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )


def test_values_under_one_transform_key_share_the_unwrapped_part(world: World) -> None:
    key = _fresh_device_key(world)
    values = [_level2(world) for _ in range(3)]
    for pt, value in values:
        assert _decrypt(world, value, key) == pt
    assert len(key._unwrapped) == 1  # the user→device key's (X, E), whatever the value
    newest = values[0][1].blocks[-1]
    tag = newest.public_key.to_bytes() + newest.encrypted_temp_key.to_bytes()
    assert list(key._unwrapped) == [tag]
    for _, value in values:  # the same (X, E) in each value, the rest fresh
        assert value.blocks[-1].public_key == newest.public_key
        assert value.blocks[-1].encrypted_temp_key == newest.encrypted_temp_key


def test_kept_part_equals_a_fresh_unwrap(world: World) -> None:
    pt, value = _level2(world)
    warm, cold = _fresh_device_key(world), _fresh_device_key(world)
    assert _decrypt(world, value, warm) == pt
    assert _decrypt(world, value, warm) == pt
    (kept,) = warm._unwrapped.values()
    assert _decrypt(world, value, cold) == pt
    assert list(cold._unwrapped.values()) == [kept]


def test_nothing_kept_by_one_key_helps_another(world: World) -> None:
    _, value = _level2(world)
    device = _fresh_device_key(world)
    _decrypt(world, value, device)
    for other in (world.device2_priv, generate_key_pair()[0]):
        with pytest.raises(DecryptionError):
            _decrypt(world, value, other)
        assert list(other._unwrapped.values()) != list(device._unwrapped.values())


def test_a_tampered_transform_key_part_is_not_served_from_what_was_kept(world: World) -> None:
    _, value = _level2(world)
    key = _fresh_device_key(world)
    _decrypt(world, value, key)
    newest = value.blocks[-1]
    forged_block = replace(newest, encrypted_temp_key=newest.encrypted_temp_key * GT.random())
    forged = replace(value, blocks=(value.blocks[0], forged_block))
    signer = world.service.verifying_key.to_bytes()
    sig = world.service.sign(labels.SIG_TRANSFORMED, _transform_signed_part(forged, signer))
    forged = replace(forged, transform_signature=sig)  # signed by the pinned service
    with pytest.raises(DecryptionError):
        _decrypt(world, EncryptedValue.from_bytes(forged.to_bytes()), key)
    assert len(key._unwrapped) == 2  # kept under its own (X, E), next to the genuine one


def test_what_a_key_keeps_is_bounded(world: World) -> None:
    a_priv, _ = generate_key_pair()
    b_priv, b_pub = generate_key_pair()
    keys = [
        generate_transform_key(a_priv, b_pub, world.admin)
        for _ in range(pre._UNWRAPPED_PER_KEY + 3)
    ]
    for tk in keys:
        pt = generate_plaintext()
        out = transform(encrypt(pt, a_priv.public_key(), world.admin), [tk], world.service)
        assert _decrypt(world, out, b_priv) == pt
    assert len(b_priv._unwrapped) == pre._UNWRAPPED_PER_KEY
    newest = keys[-1].key
    tag = newest.ephemeral_public_key.to_bytes() + newest.encrypted_temp_key.to_bytes()
    assert next(reversed(b_priv._unwrapped)) == tag


def test_level_0_keeps_nothing(world: World) -> None:
    key = PrivateKey.from_secret_bytes(world.group_priv.expose_secret_bytes())
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    assert decrypt(ev, key, origin_signer=world.admin.verifying_key) == pt
    assert len(key._unwrapped) == 0
