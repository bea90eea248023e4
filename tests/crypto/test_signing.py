"""Ed25519 with labels and pinned signers."""

from __future__ import annotations

import pytest
from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp

from sealroom.crypto.signing import SigningKey, VerifyingKey, verify_pinned
from sealroom.errors import MalformedInputError, SignatureError


def test_sign_and_verify() -> None:
    k = SigningKey.generate()
    sig = k.sign(b"label", b"message")
    k.verifying_key.verify(b"label", b"message", sig)
    verify_pinned(k.verifying_key, k.verifying_key.to_bytes(), b"label", b"message", sig)


def test_label_is_part_of_the_signature() -> None:
    k = SigningKey.generate()
    sig = k.sign(b"label-a", b"message")
    with pytest.raises(SignatureError):
        k.verifying_key.verify(b"label-b", b"message", sig)
    # The label is length-framed: moving bytes between label and message changes it.
    with pytest.raises(SignatureError):
        k.verifying_key.verify(b"label-", b"amessage", sig)


def test_tampered_message_or_signature() -> None:
    k = SigningKey.generate()
    sig = k.sign(b"l", b"message")
    with pytest.raises(SignatureError):
        k.verifying_key.verify(b"l", b"messagf", sig)
    with pytest.raises(SignatureError):
        k.verifying_key.verify(b"l", b"message", bytes([sig[0] ^ 1]) + sig[1:])
    with pytest.raises(SignatureError, match="length"):
        k.verifying_key.verify(b"l", b"message", sig[:-1])


def test_pinning_refuses_a_valid_signature_by_another_key() -> None:
    alice, mallory = SigningKey.generate(), SigningKey.generate()
    sig = mallory.sign(b"l", b"m")
    with pytest.raises(SignatureError, match="pinned"):
        verify_pinned(alice.verifying_key, mallory.verifying_key.to_bytes(), b"l", b"m", sig)


def test_verifying_key_encoding() -> None:
    k = SigningKey.generate()
    assert VerifyingKey.from_bytes(k.verifying_key.to_bytes()) == k.verifying_key
    with pytest.raises(MalformedInputError):
        VerifyingKey.from_bytes(b"\x00" * 31)


def test_signing_key_is_secret() -> None:
    k = SigningKey.generate()
    assert "redacted" in repr(k)
    assert SigningKey(k.expose_secret_bytes()).verifying_key == k.verifying_key
    with pytest.raises(MalformedInputError):
        SigningKey(b"\x00" * 31)


def test_a_key_of_small_order_verifies_nothing() -> None:
    # With the identity as public key, R = [S]B satisfies the cofactorless equation
    # [S]B = R + [k]A for every message: a universal forgery that a check which accepts
    # small-order keys lets through. Our verification refuses it.
    identity = (1).to_bytes(32, "little")
    s = (12345).to_bytes(32, "little")
    r = crypto_scalarmult_ed25519_base_noclamp(s)
    key = VerifyingKey.from_bytes(identity)
    for message in (b"pay mallory", b"anything"):
        with pytest.raises(SignatureError):
            key.verify(b"l", message, r + s)


def test_signatures_with_a_non_canonical_scalar_are_refused() -> None:
    k = SigningKey.generate()
    sig = k.sign(b"l", b"m")
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(sig[32:], "little") + order  # the same scalar mod L, not reduced
    with pytest.raises(SignatureError):
        k.verifying_key.verify(b"l", b"m", sig[:32] + s.to_bytes(32, "little"))
