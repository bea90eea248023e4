"""A development identity provider. **Not for production.**

It stands in for the conferencing provider's SSO: it issues ES256 JWTs for any user id
asked for (on 127.0.0.1 only, by default), serves its JWKS, and keeps the provider's half of
each user's split escrow secret, which it hands only to a holder of a valid JWT for that
user with the audience ``sealroom-provider``. Pages from the origins in ``cors_origins``
(the web client's, in the demo) may call it from a browser; other pages may not.

Its HTTP API (``GET /.well-known/jwks.json``, ``POST /v1/token``, ``POST /v1/escrow-half``)
is documented in docs/sdk.md, and a test keeps that table equal to the routes here.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealroom.api.encoding import b64e
from sealroom.api.origins import OriginPolicy
from sealroom.keyservice.cors import CorsMiddleware
from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.jwt_auth import JwksSource, JwtVerifier

__all__ = ["PROVIDER_AUDIENCE", "TOKEN_LIFETIME_SECONDS", "DevIdp", "create_idp_app"]

PROVIDER_AUDIENCE: Final[str] = "sealroom-provider"
TOKEN_LIFETIME_SECONDS: Final[int] = 300


class DevIdp:
    """Keys and state of the development IdP, kept under ``data_dir``."""

    def __init__(self, data_dir: Path, issuer: str = "sealroom-dev-idp") -> None:
        self.issuer = issuer
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file = data_dir / "idp-signing-key.pem"
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("IdP key must be an EC key") from None
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        self._key = key
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        self.kid = jwt.PyJWK(jwk).key_id or uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(jwk)).hex
        jwk.update({"kid": self.kid, "alg": "ES256", "use": "sig"})
        self.jwks: dict[str, Any] = {"keys": [jwk]}
        self._halves_file = data_dir / "idp-escrow-halves.json"
        self._lock = threading.Lock()
        self._verifier = JwtVerifier(
            JwksSource(document=self.jwks), issuer=issuer, audience=PROVIDER_AUDIENCE
        )

    def issue(self, user_id: str, audience: str, now: float | None = None) -> str:
        iat = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "sub": user_id,
            "aud": audience,
            "iat": iat,
            "exp": iat + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def escrow_half(self, token: str) -> bytes:
        """The provider's half for the token's user, created on first request."""
        user = self._verifier.verify(token, time.time()).subject
        with self._lock:
            halves: dict[str, str] = (
                json.loads(self._halves_file.read_text()) if self._halves_file.exists() else {}
            )
            if user not in halves:
                halves[user] = os.urandom(16).hex()
                tmp = self._halves_file.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(halves, f)
                tmp.replace(self._halves_file)
            return bytes.fromhex(halves[user])


def create_idp_app(idp: DevIdp, cors_origins: Sequence[str] = ()) -> Starlette:
    async def jwks(request: Request) -> Response:
        return JSONResponse(idp.jwks)

    async def token(request: Request) -> Response:
        try:
            body = await request.json()
            user, audience = body["user_id"], body["audience"]
            if not (isinstance(user, str) and isinstance(audience, str) and 0 < len(user) <= 128):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            err = ServiceError("malformed_input", "expected {user_id, audience}")
            return JSONResponse(err.problem(), status_code=400)
        return JSONResponse({"token": idp.issue(user, audience)})

    async def escrow_half(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            err = ServiceError("unauthenticated")
            return JSONResponse(err.problem(), status_code=err.status)
        try:
            return JSONResponse({"half": b64e(idp.escrow_half(auth[7:].strip()))})
        except ServiceError as exc:
            return JSONResponse(exc.problem(), status_code=exc.status)

    return Starlette(
        routes=[
            Route("/.well-known/jwks.json", jwks),
            Route("/v1/token", token, methods=["POST"]),
            Route("/v1/escrow-half", escrow_half, methods=["POST"]),
        ],
        middleware=[Middleware(CorsMiddleware, policy=OriginPolicy(cors_origins))],
    )
