"""RFC 9605 Appendix C test vectors, one test per case.

Source: tests/vectors/rfc9605/test-vectors.json, the repository's copy of the file RFC 9605
cites as [TestVectors] (sframe-wg/sframe commit 025d568; its README gives the provenance),
checked against the SHA-256 stored beside it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sealroom.media.sframe import (
    CIPHER_SUITES,
    SFrameContext,
    SFrameError,
    _Key,
    aead_decrypt,
    aead_encrypt,
    decode_header,
    encode_header,
    hkdf_extract,
)

VECTORS = Path(__file__).parents[1] / "vectors" / "rfc9605"


def _vectors() -> dict[str, Any]:
    raw = (VECTORS / "test-vectors.json").read_bytes()
    expected = (VECTORS / "test-vectors.json.sha256").read_text().split()[0]
    if hashlib.sha256(raw).hexdigest() != expected:
        raise AssertionError("tests/vectors/rfc9605/test-vectors.json differs from its SHA-256")
    data: dict[str, Any] = json.loads(raw)
    return data


V = _vectors()
H = bytes.fromhex


@pytest.mark.parametrize("v", V["header"], ids=lambda v: f"kid{v['kid']:x}-ctr{v['ctr']:x}")
def test_header(v: dict[str, Any]) -> None:
    encoded = H(v["encoded"])
    assert encode_header(v["kid"], v["ctr"]) == encoded
    assert decode_header(encoded + b"payload") == (v["kid"], v["ctr"], len(encoded))


@pytest.mark.parametrize("v", V["aes_ctr_hmac"], ids=lambda v: f"suite{v['cipher_suite']}")
def test_aes_ctr_hmac_aead(v: dict[str, Any]) -> None:
    suite = CIPHER_SUITES[v["cipher_suite"]]
    key = _Key.__new__(_Key)
    key.cipher_key, key.auth_key, key.gcm = H(v["enc_key"]), H(v["auth_key"]), None
    assert H(v["key"]) == key.cipher_key + key.auth_key
    ct = aead_encrypt(suite, key, H(v["nonce"]), H(v["aad"]), H(v["pt"]))
    assert ct.hex() == v["ct"]
    assert aead_decrypt(suite, key, H(v["nonce"]), H(v["aad"]), ct) == H(v["pt"])
    with pytest.raises(SFrameError):
        aead_decrypt(suite, key, H(v["nonce"]), H(v["aad"]) + b"x", ct)


@pytest.mark.parametrize("v", V["sframe"], ids=lambda v: f"suite{v['cipher_suite']}")
def test_sframe(v: dict[str, Any]) -> None:
    suite = CIPHER_SUITES[v["cipher_suite"]]
    assert hkdf_extract(suite.hash_name, b"", H(v["base_key"])).hex() == v["sframe_secret"]
    key = _Key(suite, v["kid"], H(v["base_key"]))
    assert key.salt.to_bytes(12, "big").hex() == v["sframe_salt"]
    ctx = SFrameContext(v["cipher_suite"])
    ctx.add_encrypt_key(v["kid"], H(v["base_key"]))
    ctx.add_decrypt_key(v["kid"], H(v["base_key"]))
    ct = ctx.encrypt(v["ctr"], v["kid"], H(v["metadata"]), H(v["pt"]))
    assert ct.hex() == v["ct"]
    assert ctx.decrypt(H(v["metadata"]), H(v["ct"])) == H(v["pt"])
    for bad in (H(v["ct"])[:-1] + bytes([H(v["ct"])[-1] ^ 1]), H(v["ct"])[:6]):
        with pytest.raises(SFrameError):
            ctx.decrypt(H(v["metadata"]), bad)
    with pytest.raises(SFrameError):
        ctx.decrypt(H(v["metadata"]) + b"!", H(v["ct"]))
