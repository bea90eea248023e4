"""JWT checks for each accepted algorithm, against a JWKS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.jwt_auth import JwksSource, JwtVerifier

KEYS: dict[str, Any] = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
ALG_IMPL = {
    "ES256": jwt.algorithms.ECAlgorithm,
    "EdDSA": jwt.algorithms.OKPAlgorithm,
    "RS256": jwt.algorithms.RSAAlgorithm,
}


def _jwks() -> dict[str, Any]:
    keys = []
    for alg, key in KEYS.items():
        jwk = json.loads(ALG_IMPL[alg].to_jwk(key.public_key()))
        jwk.update({"kid": f"k-{alg}", "alg": alg})
        keys.append(jwk)
    return {"keys": keys}


def _token(alg: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "idp", "aud": "ks", "sub": "alice", "iat": now, "exp": now + 60}
    claims.update(overrides)
    return jwt.encode(claims, KEYS[alg], algorithm=alg, headers={"kid": f"k-{alg}"})


@pytest.mark.parametrize("alg", list(KEYS))
def test_each_algorithm_is_accepted(alg: str, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_jwks()))
    for source in (JwksSource(document=_jwks()), JwksSource(path=path)):
        claims = JwtVerifier(source, issuer="idp", audience="ks").verify(_token(alg), time.time())
        assert claims.subject == "alice"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aud": "other"}, "wrong_audience"),
        ({"aud": ["other", "ks"]}, None),
        ({"iss": "evil"}, "invalid_token"),
        ({"exp": -1}, "token_expired"),
        ({"iat": -121}, "token_not_fresh"),
        ({"iat": 121}, "token_not_fresh"),
        ({"sub": ""}, "invalid_token"),
    ],
)
def test_claims_are_enforced(overrides: dict[str, Any], code: str | None) -> None:
    verifier = JwtVerifier(JwksSource(document=_jwks()), issuer="idp", audience="ks")
    now = int(time.time())  # times in the table are offsets from now
    fixed = {k: now + v if k in ("iat", "exp") else v for k, v in overrides.items()}
    token = _token("ES256", **fixed)
    if code is None:
        verifier.verify(token, now)
        return
    with pytest.raises(ServiceError) as exc:
        verifier.verify(token, now)  # the same clock reading: 121 s stays 121 s
    assert exc.value.code == code


def test_unknown_key_and_unsupported_algorithm() -> None:
    verifier = JwtVerifier(JwksSource(document=_jwks()), issuer="idp", audience="ks")
    now = int(time.time())
    claims = {"iss": "idp", "aud": "ks", "sub": "a", "iat": now, "exp": now + 60}
    hs = jwt.encode(
        claims,
        "secret-but-not-a-jwks-key-0123456789",
        algorithm="HS256",
        headers={"kid": "k-ES256"},
    )
    for token in (
        hs,
        jwt.encode(claims, KEYS["ES256"], algorithm="ES256", headers={"kid": "nope"}),
    ):
        with pytest.raises(ServiceError) as exc:
            verifier.verify(token, time.time())
        assert exc.value.code == "invalid_token"


def test_algorithm_confusion_is_refused() -> None:
    # An RS256 key id with a token that claims ES256: the key and algorithm must agree.
    verifier = JwtVerifier(JwksSource(document=_jwks()), issuer="idp", audience="ks")
    now = int(time.time())
    claims = {"iss": "idp", "aud": "ks", "sub": "a", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, KEYS["ES256"], algorithm="ES256", headers={"kid": "k-RS256"})
    with pytest.raises(ServiceError):
        verifier.verify(token, time.time())
