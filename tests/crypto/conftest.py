"""Shared actors: a group, a user with an augmented key, two devices, signers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sealroom.crypto.pre import (
    AugmentationSecret,
    PrivateKey,
    PublicKey,
    VerifiedTransformKey,
    augment_private_key,
    augment_public_key,
    augment_transform_key,
    generate_key_pair,
    generate_transform_key,
)
from sealroom.crypto.signing import SigningKey


@dataclass
class World:
    admin: SigningKey
    device_signer: SigningKey
    service: SigningKey
    mallory: SigningKey
    service_secret: AugmentationSecret
    group_priv: PrivateKey
    group_pub: PublicKey
    user_priv: PrivateKey  # un-augmented, as the client holds it
    user_pub: PublicKey  # augmented A + S, as others encrypt to it
    device_priv: PrivateKey
    device_pub: PublicKey
    device2_priv: PrivateKey
    device2_pub: PublicKey
    group_to_user: VerifiedTransformKey
    user_to_device: VerifiedTransformKey  # augmented by the service
    user_to_device_raw: VerifiedTransformKey  # as the client made it
    device_to_device2: VerifiedTransformKey


@pytest.fixture(scope="session")
def world() -> World:
    admin, device_signer = SigningKey.generate(), SigningKey.generate()
    service, mallory = SigningKey.generate(), SigningKey.generate()
    secret = AugmentationSecret.generate()
    group_priv, group_pub = generate_key_pair()
    user_priv, user_raw_pub = generate_key_pair()
    user_pub = augment_public_key(user_raw_pub, secret.public_part())
    device_priv, device_pub = generate_key_pair()
    device2_priv, device2_pub = generate_key_pair()
    group_to_user = generate_transform_key(group_priv, user_pub, admin)
    raw = generate_transform_key(user_priv, device_pub, device_signer)
    user_to_device = augment_transform_key(raw, secret, service)
    device_to_device2 = generate_transform_key(device_priv, device2_pub, device_signer)
    return World(
        admin,
        device_signer,
        service,
        mallory,
        secret,
        group_priv,
        group_pub,
        user_priv,
        user_pub,
        device_priv,
        device_pub,
        device2_priv,
        device2_pub,
        group_to_user,
        user_to_device,
        raw,
        device_to_device2,
    )


def augmented_user_private(w: World) -> PrivateKey:
    return augment_private_key(w.user_priv, w.service_secret)
