"""Every attack on PRE objects fails: tampering, forged signers, wrong keys, bad points."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from sealroom.crypto import labels
from sealroom.crypto.pairing import G1, GT, Scalar
from sealroom.crypto.pre import (
    EncryptedValue,
    TransformBlock,
    TransformKey,
    decrypt,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    transform,
)
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError

from . import curve_helpers as ch
from .conftest import World

# Byte layout of an encrypted value (see EncryptedValue's docstring).
HEAD = 3
FIELDS_L0 = {
    "R": (3, 48),
    "C": (51, 576),
    "auth": (627, 32),
    "origin_signer": (659, 32),
    "origin_signature": (691, 64),
}
BLOCK_FIELDS = {"X": (0, 48), "E": (48, 576), "Xr": (624, 48), "Er": (672, 576)}


def _level2(world: World) -> tuple[EncryptedValue, EncryptedValue]:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    return ev, transform(ev, [world.group_to_user, world.user_to_device], world.service)


def _dec(world: World, value: EncryptedValue) -> object:
    return decrypt(
        value,
        world.device_priv if value.level else world.group_priv,
        origin_signer=world.admin.verifying_key,
        transformer=world.service.verifying_key,
    )


def _field_ranges(level: int) -> dict[str, tuple[int, int]]:
    ranges = dict(FIELDS_L0)
    for i in range(level):
        base = 755 + i * 1248
        for name, (off, size) in BLOCK_FIELDS.items():
            ranges[f"block{i}.{name}"] = (base + off, size)
    if level:
        end = 755 + level * 1248
        ranges["transform_signer"] = (end, 32)
        ranges["transform_signature"] = (end + 32, 64)
    return ranges


@pytest.mark.parametrize("level", [0, 2])
def test_flipping_any_field_fails(world: World, level: int) -> None:
    ev, lvl2 = _level2(world)
    value = lvl2 if level else ev
    raw = value.to_bytes()
    for name, (off, size) in _field_ranges(level).items():
        for pos in (off, off + size // 2, off + size - 1):
            bad = bytearray(raw)
            bad[pos] ^= 0x01
            with pytest.raises((MalformedInputError, DecryptionError)):
                _dec(world, EncryptedValue.from_bytes(bytes(bad)))
        assert name


def test_valid_looking_substitutions_fail(world: World) -> None:
    ev, lvl2 = _level2(world)
    other_point = G1.generator().mul_secret(Scalar.random())
    substitutions = {
        "R": replace(ev, ephemeral_public_key=other_point),
        "C": replace(ev, encrypted_message=ev.encrypted_message * GT.random()),
        "auth": replace(ev, auth_hash=os.urandom(32)),
        "origin_signature": replace(ev, origin_signature=os.urandom(64)),
        "origin_signer": replace(ev, origin_signer=world.mallory.verifying_key.to_bytes()),
        "transform_signature": replace(lvl2, transform_signature=os.urandom(64)),
        "transform_signer": replace(lvl2, transform_signer=world.mallory.verifying_key.to_bytes()),
    }
    block = lvl2.blocks[0]
    for field in ("public_key", "random_transform_public_key"):
        blocks = (replace(block, **{field: other_point}), lvl2.blocks[1])
        substitutions[f"block.{field}"] = replace(lvl2, blocks=blocks)
    for field in ("encrypted_temp_key", "encrypted_random_transform_temp_key"):
        blocks = (replace(block, **{field: getattr(block, field) * GT.random()}), lvl2.blocks[1])
        substitutions[f"block.{field}"] = replace(lvl2, blocks=blocks)
    for name, value in substitutions.items():
        with pytest.raises(DecryptionError):
            _dec(world, EncryptedValue.from_bytes(value.to_bytes()))
        assert name


def test_tampered_ciphertext_caught_by_auth_hash_alone(world: World) -> None:
    # C is not covered by any signature: only the auth hash can catch this.
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    bad = replace(ev, encrypted_message=ev.encrypted_message * GT.random())
    with pytest.raises(DecryptionError):
        _dec(world, bad)


def test_malicious_but_pinned_transformer_cannot_alter_blocks(world: World) -> None:
    # The pinned service signs tampered blocks: the auth hash still catches it.
    _, lvl2 = _level2(world)
    block = lvl2.blocks[1]
    blocks = (
        lvl2.blocks[0],
        replace(block, encrypted_temp_key=block.encrypted_temp_key * GT.random()),
    )
    from sealroom.crypto.pre import _transform_signed_part

    forged = replace(lvl2, blocks=blocks)
    signer = world.service.verifying_key.to_bytes()
    sig = world.service.sign(labels.SIG_TRANSFORMED, _transform_signed_part(forged, signer))
    forged = replace(forged, transform_signature=sig)
    with pytest.raises(DecryptionError):
        _dec(world, forged)


def test_forged_origin_signer_fails(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.group_pub, world.mallory)
    with pytest.raises(DecryptionError):
        _dec(world, ev)
    # The same value decrypts when its real signer is pinned.
    decrypt(ev, world.group_priv, origin_signer=world.mallory.verifying_key)


def test_rogue_transformer_fails(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    out = transform(ev, [world.group_to_user, world.user_to_device], world.mallory)
    with pytest.raises(DecryptionError):
        _dec(world, out)


def test_transformed_value_needs_pinned_transformer(world: World) -> None:
    _, lvl2 = _level2(world)
    with pytest.raises(DecryptionError):
        decrypt(lvl2, world.device_priv, origin_signer=world.admin.verifying_key)


def test_wrong_private_key_fails(world: World) -> None:
    ev, lvl2 = _level2(world)
    other, _ = generate_key_pair()
    with pytest.raises(DecryptionError):
        decrypt(ev, other, origin_signer=world.admin.verifying_key)
    with pytest.raises(DecryptionError):
        decrypt(
            lvl2,
            world.device2_priv,
            origin_signer=world.admin.verifying_key,
            transformer=world.service.verifying_key,
        )


def test_removed_member_cannot_read_new_values(world: World) -> None:
    # A device whose transform key the service no longer holds gets nothing it can open:
    # the only other path would be a transform key to some other device.
    _, lvl2 = _level2(world)
    with pytest.raises(DecryptionError):
        decrypt(
            lvl2,
            world.device2_priv,
            origin_signer=world.admin.verifying_key,
            transformer=world.service.verifying_key,
        )


def test_second_hop_needs_previous_transformer_pinned(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    one = transform(ev, [world.group_to_user], world.mallory)
    with pytest.raises(SignatureError):
        transform(one, [world.user_to_device], world.service)
    with pytest.raises(SignatureError):
        transform(
            one,
            [world.user_to_device],
            world.service,
            previous_transformer=world.service.verifying_key,
        )


@pytest.mark.parametrize("level", [0, 2])
def test_truncated_or_extended_values_rejected(world: World, level: int) -> None:
    ev, lvl2 = _level2(world)
    raw = (lvl2 if level else ev).to_bytes()
    for bad in (raw[:-1], raw + b"\x00", raw[:10], b"", raw[:-96]):
        with pytest.raises(MalformedInputError):
            EncryptedValue.from_bytes(bad)


def test_wrong_version_and_tag_rejected(world: World) -> None:
    raw = encrypt(generate_plaintext(), world.group_pub, world.admin).to_bytes()
    with pytest.raises(MalformedInputError, match="version"):
        EncryptedValue.from_bytes(b"\x02" + raw[1:])
    with pytest.raises(MalformedInputError, match="tag"):
        EncryptedValue.from_bytes(raw[:1] + b"\x21" + raw[2:])
    with pytest.raises(MalformedInputError, match="level"):
        EncryptedValue.from_bytes(raw[:2] + b"\x09" + raw[3:])


def test_length_is_checked_before_any_point_is_decoded(world: World) -> None:
    raw = encrypt(generate_plaintext(), world.group_pub, world.admin).to_bytes()
    with pytest.raises(MalformedInputError, match="expected 755 bytes for level 0, got 756"):
        EncryptedValue.from_bytes(raw + b"\x00")


def test_level_above_the_maximum_rejected_even_when_well_formed(world: World) -> None:
    # Nine copies of a genuine block: every point is valid and the length matches level 9.
    _, lvl2 = _level2(world)
    raw = lvl2.to_bytes()
    block = raw[755 : 755 + 1248]
    forged = raw[:2] + b"\x09" + raw[3:755] + block * 9 + raw[-96:]
    with pytest.raises(MalformedInputError, match="level 9 exceeds 8"):
        EncryptedValue.from_bytes(forged)


def test_malformed_points_in_values_rejected(world: World) -> None:
    raw = bytearray(encrypt(generate_plaintext(), world.group_pub, world.admin).to_bytes())
    identity = bytes(48)
    for enc in [identity, ch.g1_not_on_curve(), *ch.g1_on_curve_not_in_subgroup()]:
        bad = bytes(raw[:3]) + enc + bytes(raw[51:])
        with pytest.raises(MalformedInputError):
            EncryptedValue.from_bytes(bad)
    for enc in [ch.gt_unitary_not_in_gt(7), ch.gt_minus_one(), bytes(576)]:
        bad = bytes(raw[:51]) + enc + bytes(raw[627:])
        with pytest.raises(MalformedInputError):
            EncryptedValue.from_bytes(bad)


# --- transform keys ---

TK_FIELDS = {
    "X": (2, 48),
    "from": (50, 48),
    "to": (98, 48),
    "E": (146, 576),
    "H": (722, 96),
    "signer": (818, 32),
    "signature": (850, 64),
}


def test_transform_key_any_flip_fails_verification(world: World) -> None:
    raw = world.group_to_user.key.to_bytes()
    for name, (off, size) in TK_FIELDS.items():
        for pos in (off, off + size - 1):
            bad = bytearray(raw)
            bad[pos] ^= 0x01
            with pytest.raises((MalformedInputError, SignatureError)):
                TransformKey.from_bytes(bytes(bad)).verify(world.admin.verifying_key)
        assert name


def test_transform_key_valid_substitutions_fail(world: World) -> None:
    tk = world.group_to_user.key
    pin = world.admin.verifying_key
    other = G1.generator().mul_secret(Scalar.random())
    for bad in (
        replace(tk, ephemeral_public_key=other),
        replace(tk, encrypted_temp_key=tk.encrypted_temp_key * GT.random()),
        replace(tk, hashed_temp_key=tk.hashed_temp_key + tk.hashed_temp_key),
        replace(tk, to_public_key=world.device_pub),
        replace(tk, from_public_key=world.device_pub),
        replace(tk, signature=os.urandom(64)),
    ):
        with pytest.raises(SignatureError):
            TransformKey.from_bytes(bad.to_bytes()).verify(pin)


def test_transform_key_wrong_pinned_signer(world: World) -> None:
    with pytest.raises(SignatureError, match="pinned"):
        world.group_to_user.key.verify(world.mallory.verifying_key)
    world.group_to_user.key.verify(world.admin.verifying_key)


def test_transform_key_truncated_or_extended(world: World) -> None:
    raw = world.group_to_user.key.to_bytes()
    for bad in (raw[:-1], raw + b"\x00", b""):
        with pytest.raises(MalformedInputError):
            TransformKey.from_bytes(bad)


def test_transform_block_is_exactly_four_fields() -> None:
    assert TransformBlock.__slots__ == (
        "public_key",
        "encrypted_temp_key",
        "random_transform_public_key",
        "encrypted_random_transform_temp_key",
    )
