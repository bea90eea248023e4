"""PRE behaviour: round trips over 0-3 hops, augmentation, derived keys, encodings."""

from __future__ import annotations

import pickle

import pytest

from sealroom.crypto import labels
from sealroom.crypto.pre import (
    EncryptedValue,
    Plaintext,
    PrivateKey,
    PublicKey,
    TransformKey,
    VerifiedTransformKey,
    augment_private_key,
    augment_public_key,
    decrypt,
    derive_private_key,
    derive_symmetric_key,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
    transform,
)
from sealroom.errors import DecryptionError, MalformedInputError

from .conftest import World, augmented_user_private


def test_level_0_roundtrip(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    assert ev.level == 0
    assert decrypt(ev, world.group_priv, origin_signer=world.admin.verifying_key) == pt


def test_level_1_group_to_user(world: World) -> None:
    pt = generate_plaintext()
    ev = transform(encrypt(pt, world.group_pub, world.admin), [world.group_to_user], world.service)
    assert ev.level == 1
    got = decrypt(
        ev,
        augmented_user_private(world),
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )
    assert got == pt


def test_level_2_group_to_user_to_device_in_one_call(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    out = transform(ev, [world.group_to_user, world.user_to_device], world.service)
    assert out.level == 2
    got = decrypt(
        out,
        world.device_priv,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )
    assert got == pt


def test_level_2_in_two_calls_and_level_3(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    svc = world.service.verifying_key
    one = transform(ev, [world.group_to_user], world.service)
    two = transform(one, [world.user_to_device], world.service, previous_transformer=svc)
    assert (
        decrypt(two, world.device_priv, origin_signer=world.admin.verifying_key, transformer=svc)
        == pt
    )
    three = transform(two, [world.device_to_device2], world.service, previous_transformer=svc)
    assert three.level == 3
    assert (
        decrypt(three, world.device2_priv, origin_signer=world.admin.verifying_key, transformer=svc)
        == pt
    )


def test_user_to_device_direct(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.user_pub, world.device_signer)
    out = transform(ev, [world.user_to_device], world.service)
    got = decrypt(
        out,
        world.device_priv,
        origin_signer=world.device_signer.verifying_key,
        transformer=world.service.verifying_key,
    )
    assert got == pt


def test_unaugmented_transform_key_fails(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.user_pub, world.device_signer)
    out = transform(ev, [world.user_to_device_raw], world.service)
    with pytest.raises(DecryptionError):
        decrypt(
            out,
            world.device_priv,
            origin_signer=world.device_signer.verifying_key,
            transformer=world.service.verifying_key,
        )


def test_unaugmented_private_key_fails_and_augmented_works(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.user_pub, world.device_signer)
    pin = world.device_signer.verifying_key
    with pytest.raises(DecryptionError):
        decrypt(ev, world.user_priv, origin_signer=pin)
    assert decrypt(ev, augmented_user_private(world), origin_signer=pin) == pt


def test_augmentation_is_consistent(world: World) -> None:
    aug_priv = augment_private_key(world.user_priv, world.service_secret)
    raw_pub = world.user_priv.public_key()
    assert aug_priv.public_key() == augment_public_key(raw_pub, world.service_secret.public_part())
    assert world.user_to_device.key.from_public_key == world.user_pub


def test_transform_key_needs_only_delegatee_public_key() -> None:
    a_priv, _ = generate_key_pair()
    b_priv, b_pub = generate_key_pair()
    from sealroom.crypto.signing import SigningKey

    signer = SigningKey.generate()
    tk = generate_transform_key(a_priv, PublicKey.from_bytes(b_pub.to_bytes()), signer)
    pt = generate_plaintext()
    out = transform(encrypt(pt, a_priv.public_key(), signer), [tk], signer)
    assert (
        decrypt(out, b_priv, origin_signer=signer.verifying_key, transformer=signer.verifying_key)
        == pt
    )


def test_keys_must_chain(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    with pytest.raises(ValueError, match="chain"):
        transform(ev, [world.user_to_device, world.group_to_user], world.service)
    with pytest.raises(ValueError, match="at least one"):
        transform(ev, [], world.service)


def test_derived_keys_are_domain_separated() -> None:
    pt = generate_plaintext()
    dek = derive_symmetric_key(pt)
    assert len(dek.expose_secret_bytes()) == 32
    assert dek == derive_symmetric_key(Plaintext.from_secret_bytes(pt.expose_secret_bytes()))
    priv = derive_private_key(pt)
    assert priv.scalar.expose_bytes() != dek.expose_secret_bytes()
    assert len(set(labels.ALL)) == len(labels.ALL)


def test_encodings_roundtrip(world: World) -> None:
    pt = generate_plaintext()
    ev = encrypt(pt, world.group_pub, world.admin)
    lvl2 = transform(ev, [world.group_to_user, world.user_to_device], world.service)
    for value in (ev, lvl2):
        raw = value.to_bytes()
        assert EncryptedValue.from_bytes(raw).to_bytes() == raw
    assert len(ev.to_bytes()) == 755
    assert len(lvl2.to_bytes()) == 755 + 2 * 1248 + 96
    tk = world.group_to_user.key
    assert TransformKey.from_bytes(tk.to_bytes()) == tk
    assert len(tk.to_bytes()) == 914
    assert PublicKey.from_bytes(world.group_pub.to_bytes()) == world.group_pub
    restored = PrivateKey.from_secret_bytes(world.group_priv.expose_secret_bytes())
    assert restored == world.group_priv


@pytest.mark.parametrize(
    "secret_factory",
    [
        lambda: generate_key_pair()[0],
        generate_plaintext,
        lambda: derive_symmetric_key(generate_plaintext()),
    ],
)
def test_secret_types_are_redacted_unhashable_unpicklable(secret_factory: object) -> None:
    assert callable(secret_factory)
    secret = secret_factory()
    assert "redacted" in repr(secret)
    assert "redacted" in str(secret)
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_verified_transform_key_cannot_be_forged(world: World) -> None:
    with pytest.raises(TypeError):
        VerifiedTransformKey(world.group_to_user.key, object())


def test_private_key_encoding_errors() -> None:
    with pytest.raises(MalformedInputError):
        PrivateKey.from_secret_bytes(b"\x01\x02" + bytes(32))  # zero scalar
    with pytest.raises(MalformedInputError):
        PrivateKey.from_secret_bytes(b"\x01\x02" + b"\x01" * 31)  # short
