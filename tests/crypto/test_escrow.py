"""Escrow: Argon2id / PBKDF2 + AES-256-GCM, wrong secret distinct from corruption."""

from __future__ import annotations

import pytest

from sealroom.crypto.escrow import (
    Argon2idParams,
    EscrowSecret,
    Pbkdf2Params,
    combine_split_secret,
    open_private_key,
    seal_private_key,
)
from sealroom.crypto.pre import generate_key_pair
from sealroom.errors import DecryptionError, MalformedInputError, WrongSecretError

FAST_ARGON = Argon2idParams(time_cost=1, memory_kib=8 * 1024, parallelism=1)


@pytest.mark.parametrize("kdf", ["argon2id", "pbkdf2"])
def test_roundtrip_with_default_parameters(kdf: str) -> None:
    priv, _ = generate_key_pair()
    secret = EscrowSecret.from_password("correct horse battery staple")
    blob = seal_private_key(priv, secret, kdf)  # type: ignore[arg-type]
    assert open_private_key(blob, secret) == priv


def test_parameters_travel_in_the_blob() -> None:
    priv, _ = generate_key_pair()
    secret = EscrowSecret.from_password("pw")
    blob = seal_private_key(priv, secret, params=Pbkdf2Params(iterations=700_000))
    assert blob[2] == 2
    assert int.from_bytes(blob[3:7], "big") == 700_000
    assert open_private_key(blob, secret) == priv
    blob2 = seal_private_key(priv, secret, params=FAST_ARGON)
    assert blob2[2] == 1
    assert open_private_key(blob2, secret) == priv


@pytest.mark.parametrize("params", [FAST_ARGON, Pbkdf2Params()])
def test_wrong_password_has_its_own_error(params: Argon2idParams | Pbkdf2Params) -> None:
    priv, _ = generate_key_pair()
    blob = seal_private_key(priv, EscrowSecret.from_password("right"), params=params)
    with pytest.raises(WrongSecretError):
        open_private_key(blob, EscrowSecret.from_password("wrong"))


def test_corrupted_ciphertext_is_not_a_wrong_password() -> None:
    priv, _ = generate_key_pair()
    secret = EscrowSecret.from_password("right")
    blob = bytearray(seal_private_key(priv, secret, params=FAST_ARGON))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_private_key(bytes(blob), secret)


def test_corrupted_structure_is_malformed() -> None:
    priv, _ = generate_key_pair()
    secret = EscrowSecret.from_password("right")
    blob = seal_private_key(priv, secret, params=FAST_ARGON)
    for bad in (blob[:-1], blob + b"\x00", b"\x02" + blob[1:], blob[:2] + b"\x09" + blob[3:]):
        with pytest.raises(MalformedInputError):
            open_private_key(bad, secret)


def test_weakened_parameters_are_refused() -> None:
    priv, _ = generate_key_pair()
    secret = EscrowSecret.from_password("pw")
    blob = seal_private_key(priv, secret, params=Pbkdf2Params())
    weakened = blob[:3] + (1000).to_bytes(4, "big") + blob[7:]
    with pytest.raises(MalformedInputError, match="iterations"):
        open_private_key(weakened, secret)
    with pytest.raises(MalformedInputError):
        seal_private_key(priv, secret, params=Pbkdf2Params(iterations=599_999))
    with pytest.raises(MalformedInputError):
        seal_private_key(priv, secret, params=Argon2idParams(memory_kib=1024))


def test_split_secret_combines_both_halves() -> None:
    a, b = b"\x01" * 16, b"\x02" * 16
    s = combine_split_secret(a, b)
    assert s == combine_split_secret(a, b)
    assert s != combine_split_secret(b, a)
    assert s != combine_split_secret(a, b"\x03" * 16)
    assert len(s.expose_secret_bytes()) == 32
    priv, _ = generate_key_pair()
    blob = seal_private_key(priv, s, params=FAST_ARGON)
    assert open_private_key(blob, combine_split_secret(a, b)) == priv
    with pytest.raises(WrongSecretError):
        open_private_key(blob, combine_split_secret(a, b"\x03" * 16))


def test_split_halves_must_be_128_bits() -> None:
    with pytest.raises(MalformedInputError):
        combine_split_secret(b"\x01" * 15, b"\x02" * 16)
    with pytest.raises(MalformedInputError):
        combine_split_secret(b"\x01" * 16, b"\x02" * 32)


def test_escrow_secret_is_redacted() -> None:
    s = EscrowSecret.from_password("hunter2")
    assert "hunter2" not in repr(s)
    with pytest.raises(ValueError, match="empty"):
        EscrowSecret.from_password("")
