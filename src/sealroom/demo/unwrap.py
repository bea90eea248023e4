"""The first demo: a DEK unwrapped group → user → device, with the cost of each step.

Until the meeting demo replaces it, this is what ``make demo`` runs: it plays every party
in one process and prints what each one did, how long it took, and what it could not do.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO, TypeVar

from sealroom.crypto import envelope, escrow
from sealroom.crypto.pre import (
    AugmentationSecret,
    EncryptedValue,
    PrivateKey,
    augment_public_key,
    augment_transform_key,
    decrypt,
    generate_key_pair,
    generate_transform_key,
    transform,
)
from sealroom.crypto.signing import SigningKey
from sealroom.errors import DecryptionError

T = TypeVar("T")


@dataclass
class Step:
    party: str
    action: str
    ms: float
    detail: str = ""


class _Recorder:
    def __init__(self, out: TextIO) -> None:
        self.steps: list[Step] = []
        self.out = out

    def run(self, party: str, action: str, fn: Callable[[], T], detail: str = "") -> T:
        start = time.perf_counter()
        result = fn()
        ms = (time.perf_counter() - start) * 1000
        self.steps.append(Step(party, action, ms, detail))
        print(f"  {party:<14}{action:<52}{ms:>8.2f} ms  {detail}".rstrip(), file=self.out)
        return result


def run(out: TextIO, message: bytes = b"Agenda: quarterly review (confidential)") -> bool:
    """Play the whole unwrap; return True if every check came out as expected."""
    rec = _Recorder(out)
    ok = True
    print("Sealroom demo: one DEK, encrypted once to a group, unwrapped on a device\n", file=out)
    print(f"  {'party':<14}{'step':<52}{'time':>11}", file=out)

    service_signer = SigningKey.generate()
    service_secret = rec.run(
        "key service",
        "create augmentation secret s, publish S = s·P1",
        lambda: _with_public_part(AugmentationSecret.generate()),
    )
    admin_signer = SigningKey.generate()
    group_priv, group_pub = rec.run("admin device", "create the group key pair", generate_key_pair)
    user_priv, user_raw_pub = rec.run("user", "create the user key pair", generate_key_pair)
    user_pub = augment_public_key(user_raw_pub, service_secret.public_part())
    service_half, provider_half = secrets.token_bytes(16), secrets.token_bytes(16)
    blob = rec.run(
        "user",
        "escrow user key (split trust, Argon2id)",
        lambda: escrow.seal_private_key(
            user_priv, escrow.combine_split_secret(service_half, provider_half)
        ),
    )
    device_priv, device_pub = rec.run("new device", "create the device key pair", generate_key_pair)
    device_signer = SigningKey.generate()
    recovered = rec.run(
        "new device",
        "recover user key from both escrow halves",
        lambda: escrow.open_private_key(
            blob, escrow.combine_split_secret(service_half, provider_half)
        ),
    )
    raw_u2d = rec.run(
        "new device",
        "make user→device transform key",
        lambda: generate_transform_key(recovered, device_pub, device_signer),
    )
    u2d = rec.run(
        "key service",
        "verify (pinned) and augment it: H <- H - s·P2",
        lambda: augment_transform_key(
            raw_u2d.key.verify(device_signer.verifying_key), service_secret, service_signer
        ),
    )
    g2u = rec.run(
        "admin device",
        "add user to group: group→user transform key",
        lambda: generate_transform_key(group_priv, user_pub, admin_signer),
    )
    env = rec.run(
        "admin device",
        "seal the agenda, encrypt its DEK once to the group",
        lambda: envelope.seal(message, b"meeting-42/agenda", [group_pub], admin_signer),
    )
    edek_bytes = env.edeks[0].to_bytes()
    level2 = rec.run(
        "key service",
        "transform group→user→device (2 hops)",
        lambda: transform(EncryptedValue.from_bytes(edek_bytes), [g2u, u2d], service_signer),
        "learns nothing",
    )
    level2_bytes = level2.to_bytes()
    plaintext = rec.run(
        "device",
        "validate, check both pinned signers, decrypt",
        lambda: envelope.open_with_key(
            env,
            EncryptedValue.from_bytes(level2_bytes),
            device_priv,
            origin_signer=admin_signer.verifying_key,
            transformer=service_signer.verifying_key,
        ),
    )
    print(f"\n  device reads: {plaintext.decode()!r}", file=out)
    ok &= plaintext == message

    print("\n  What must fail, and does:", file=out)
    checks: list[tuple[str, Callable[[], object]]] = [
        (
            "key service decrypts with its own secret",
            lambda: decrypt(
                EncryptedValue.from_bytes(edek_bytes),
                PrivateKey(service_secret.scalar),
                origin_signer=admin_signer.verifying_key,
            ),
        ),
        (
            "a device with no transform key (revoked) decrypts",
            lambda: decrypt(
                level2,
                generate_key_pair()[0],
                origin_signer=admin_signer.verifying_key,
                transformer=service_signer.verifying_key,
            ),
        ),
        (
            "a tampered ciphertext is accepted",
            lambda: decrypt(
                _flip(level2_bytes, 60),
                device_priv,
                origin_signer=admin_signer.verifying_key,
                transformer=service_signer.verifying_key,
            ),
        ),
        (
            "a transform by an unpinned proxy is accepted",
            lambda: decrypt(
                transform(env.edeks[0], [g2u, u2d], SigningKey.generate()),
                device_priv,
                origin_signer=admin_signer.verifying_key,
                transformer=service_signer.verifying_key,
            ),
        ),
    ]
    for label, attempt in checks:
        try:
            attempt()
        except DecryptionError:
            print(f"    refused: {label}", file=out)
        except Exception as exc:  # malformed input is refused before decryption
            print(f"    refused: {label} ({type(exc).__name__})", file=out)
        else:
            ok = False
            print(f"    ACCEPTED (this is a bug): {label}", file=out)

    total = sum(s.ms for s in rec.steps)
    print(
        f"\n  sizes: EDEK {len(edek_bytes)} B at level 0, {len(level2_bytes)} B after 2 hops;"
        f" transform key {len(g2u.key.to_bytes())} B; escrow blob {len(blob)} B",
        file=out,
    )
    print(
        f"  total {total:.0f} ms; {'all checks passed' if ok else 'SOME CHECKS FAILED'}", file=out
    )
    return ok


def _with_public_part(secret: AugmentationSecret) -> AugmentationSecret:
    secret.public_part()
    return secret


def _flip(raw: bytes, pos: int) -> EncryptedValue:
    bad = bytearray(raw)
    bad[pos] ^= 1
    return EncryptedValue.from_bytes(bytes(bad))
