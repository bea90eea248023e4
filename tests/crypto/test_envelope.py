"""Envelope encryption: one DEK, EDEKs to several recipients, AAD bound to the object id."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.crypto import labels
from sealroom.crypto.envelope import Envelope, _aad, open_envelope, open_with_key, seal
from sealroom.crypto.pre import decrypt, derive_symmetric_key, generate_plaintext, transform
from sealroom.crypto.signing import SigningKey
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
    assert Envelope.from_bytes(raw).to_bytes() == raw
    assert raw[-96:-64] == world.admin.verifying_key.to_bytes()


def _resign(env: Envelope, signer: SigningKey) -> Envelope:
    env = replace(env, signer=signer.verifying_key.to_bytes())
    return replace(env, signature=signer.sign(labels.SIG_ENVELOPE, env.signed_part()))


def test_object_id_is_bound(world: World) -> None:
    env = seal(b"secret", b"id-1", [world.group_pub], world.admin)
    pin = world.admin.verifying_key
    source = decrypt(env.edeks[0], world.group_priv, origin_signer=pin)
    assert open_envelope(env, source, sealer=pin) == b"secret"
    with pytest.raises(DecryptionError):  # caught by the signature
        open_envelope(replace(env, object_id=b"id-2"), source, sealer=pin)
    # Even re-signed by the sealer itself, the AES-GCM associated data refuses the new id.
    with pytest.raises(DecryptionError):
        open_envelope(_resign(replace(env, object_id=b"id-2"), world.admin), source, sealer=pin)


def test_tampered_ciphertext_or_nonce_fails(world: World) -> None:
    env = seal(b"secret", b"id", [world.group_pub], world.admin)
    pin = world.admin.verifying_key
    source = decrypt(env.edeks[0], world.group_priv, origin_signer=pin)
    flipped = bytes([env.ciphertext[0] ^ 1]) + env.ciphertext[1:]
    for bad in (replace(env, ciphertext=flipped), replace(env, nonce=bytes(12))):
        with pytest.raises(DecryptionError):
            open_envelope(bad, source, sealer=pin)
        with pytest.raises(DecryptionError):  # the sealer's re-signature does not help
            open_envelope(_resign(bad, world.admin), source, sealer=pin)


def test_recipient_cannot_forge_content_in_the_sealers_name(world: World) -> None:
    # A recipient knows the DEK, so it can make a valid AES-GCM ciphertext; the pinned
    # sealer's signature is what stops it.
    env = seal(b"secret", b"id", [world.group_pub], world.admin)
    pin = world.admin.verifying_key
    source = decrypt(env.edeks[0], world.group_priv, origin_signer=pin)
    dek = derive_symmetric_key(source).expose_secret_bytes()
    forged_ct = AESGCM(dek).encrypt(env.nonce, b"forged", _aad(env.object_id))
    forged = _resign(replace(env, ciphertext=forged_ct), world.mallory)
    with pytest.raises(DecryptionError):
        open_envelope(forged, source, sealer=pin)
    with pytest.raises(DecryptionError):
        open_envelope(replace(forged, signer=env.signer), source, sealer=pin)


def test_wrong_source_fails(world: World) -> None:
    env = seal(b"secret", b"id", [world.group_pub], world.admin)
    with pytest.raises(DecryptionError):
        open_envelope(env, generate_plaintext(), sealer=world.admin.verifying_key)


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
