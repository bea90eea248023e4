"""Known answers from the RFCs for the primitives we call (tests/vectors/primitives.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from sealroom.crypto.signing import SigningKey

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "primitives.json").read_text()
)


@pytest.mark.parametrize("v", VECTORS["hkdf_sha256"], ids=lambda v: v["source"])
def test_hkdf(v: dict[str, Any]) -> None:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=v["length"],
        salt=bytes.fromhex(v["salt"]) or None,
        info=bytes.fromhex(v["info"]),
    ).derive(bytes.fromhex(v["ikm"]))
    assert okm.hex() == v["okm"]


@pytest.mark.parametrize("v", VECTORS["pbkdf2_hmac_sha256"], ids=lambda v: v["source"])
def test_pbkdf2(v: dict[str, Any]) -> None:
    dk = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=v["dklen"],
        salt=v["salt"].encode(),
        iterations=v["iterations"],
    ).derive(v["password"].encode())
    assert dk.hex() == v["dk"]


@pytest.mark.parametrize("v", VECTORS["ed25519"], ids=lambda v: v["source"])
def test_ed25519(v: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["secret_key"]))
    assert key.sign(bytes.fromhex(v["message"])).hex() == v["signature"]
    ours = SigningKey(bytes.fromhex(v["secret_key"]))
    assert ours.verifying_key.to_bytes().hex() == v["public_key"]
