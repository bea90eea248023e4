"""Identity statements shared by the SDK and the key service.

A user's Ed25519 key certifies each of its devices (id, signing key, PRE key), and proves
a revocation when no device is left. It is derived from the user's PRE key under its own
label, so the one escrowed key recovers both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.crypto import labels
from sealroom.crypto.pre import PrivateKey
from sealroom.crypto.signing import SigningKey

__all__ = [
    "DEVICE_CERT_LABEL",
    "GROUP_KEY_LABEL",
    "REVOKE_PROOF_LABEL",
    "device_certificate_message",
    "group_key_message",
    "members_digest",
    "user_signing_key",
]

DEVICE_CERT_LABEL: Final[bytes] = b"sealroom/v1/sig/device-certificate"
REVOKE_PROOF_LABEL: Final[bytes] = b"sealroom/v1/sig/revoke-device"
GROUP_KEY_LABEL: Final[bytes] = b"sealroom/v1/sig/group-key"


def group_key_message(group_id: str, public_key: bytes) -> bytes:
    """What an admin device states about a group: this is its public key."""
    return group_id.encode() + b"\x00" + public_key


def members_digest(user_ids: Iterable[str]) -> bytes:
    """What names a group's exact membership: SHA-256, under its own label, of the sorted,
    length-prefixed user ids. The manager of a meeting group sends it with every value it
    registers; the key service refuses the value unless its member list hashes the same."""
    d = hashlib.sha256(labels.MEMBERS_DIGEST)
    for user in sorted(set(user_ids)):
        raw = user.encode()
        d.update(len(raw).to_bytes(2, "big") + raw)
    return d.digest()


def device_certificate_message(device_id: str, signing_key: bytes, public_key: bytes) -> bytes:
    """What a user's signing key certifies about one of its devices."""
    return device_id.encode() + b"\x00" + signing_key + public_key


def user_signing_key(user_key: PrivateKey) -> SigningKey:
    """The user's Ed25519 key, derived from its PRE private key."""
    seed = HKDF(hashes.SHA256(), 32, None, labels.USER_SIGNING_SEED).derive(
        user_key.expose_secret_bytes()
    )
    return SigningKey(seed)
