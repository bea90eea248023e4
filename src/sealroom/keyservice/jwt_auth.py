"""Identity tokens from the configured IdP: ES256, EdDSA or RS256 JWTs checked against a JWKS.

A token counts only if its signature verifies under a key of the JWKS, its issuer is the
configured one, its audience includes this service, it has not expired, and it was issued
within ±2 minutes of now.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import jwt

from sealroom.keyservice.errors import ServiceError
from sealroom.ops.logs import OncePerOutage

__all__ = [
    "ALGORITHMS",
    "IAT_WINDOW_SECONDS",
    "Claims",
    "JwksSource",
    "JwtVerifier",
]

ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "EdDSA", "RS256")
IAT_WINDOW_SECONDS: Final[int] = 120
_JWKS_TTL_SECONDS: Final[float] = 300.0
_JWKS_MIN_REFRESH_SECONDS: Final[float] = 10.0
log = logging.getLogger("sealroom.idp")


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    issued_at: int
    expires_at: int


class JwksSource:
    """A JWKS from a file or a URL, cached; refetched when a token names an unknown key."""

    def __init__(
        self,
        *,
        url: str | None = None,
        path: Path | None = None,
        document: dict[str, Any] | None = None,
    ) -> None:
        if sum(x is not None for x in (url, path, document)) != 1:
            raise ValueError("give exactly one of url, path or document")
        self._url, self._path = url, path
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._tried_at = float("-inf")
        self.outage = OncePerOutage(log, "the IdP's keys (JWKS)")
        if document is not None:
            self._keys = self._parse(document)
            self._fetched_at = float("inf")

    @staticmethod
    def _parse(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        keys = {}
        for jwk in document.get("keys", []):
            if "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                continue
        return keys

    def _load(self) -> dict[str, Any]:
        if self._path is not None:
            data: dict[str, Any] = json.loads(self._path.read_text())
            return data
        if self._url is None:  # pragma: no cover - guarded by __init__
            raise ValueError("no JWKS source")
        response = httpx.get(self._url, timeout=5.0)
        response.raise_for_status()
        fetched: dict[str, Any] = response.json()
        return fetched

    def _refresh(self, now: float) -> bool:
        """Fetch the keys (under the lock); False if that failed (logged once an outage)."""
        self._tried_at = now
        try:
            keys = self._parse(self._load())
        except (OSError, ValueError, httpx.HTTPError) as exc:
            self.outage.failed(exc)
            return False
        self._keys, self._fetched_at = keys, now
        if keys:
            self.outage.ok()
        else:
            self.outage.failed("the JWKS holds no usable key")
        return True

    def key(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        with self._lock:
            stale = now - self._fetched_at > _JWKS_TTL_SECONDS
            unknown = kid not in self._keys and now - self._fetched_at > _JWKS_MIN_REFRESH_SECONDS
            recent_failure = now - self._tried_at < 1.0 and self._fetched_at < self._tried_at
            if (stale or unknown) and not recent_failure:
                self._refresh(now)
            if not self._keys:
                raise ServiceError("unavailable", "the identity provider's keys are unavailable")
            return self._keys.get(kid)

    def ready(self) -> str:
        """``"ok"`` once keys are loaded (fetching them if none are yet), else why not."""
        now = time.monotonic()
        with self._lock:
            if not self._keys and now - self._tried_at >= 1.0:
                self._refresh(now)
            if self._keys:
                return "ok"
            return "the IdP's keys are not loaded" + (
                " (fetch failing)" if self.outage.failing else ""
            )


class JwtVerifier:
    def __init__(self, jwks: JwksSource, *, issuer: str, audience: str) -> None:
        self._jwks, self._issuer, self._audience = jwks, issuer, audience

    def verify(self, token: str, now: float) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ServiceError("invalid_token", "not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS or not isinstance(kid, str):
            raise ServiceError("invalid_token", "unsupported algorithm or missing key id")
        key = self._jwks.key(kid)
        if key is None:
            raise ServiceError("invalid_token", "unknown signing key")
        if key.algorithm_name != alg:
            raise ServiceError("invalid_token", "the key does not match the token's algorithm")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": ["exp", "iat", "sub", "iss", "aud"],
                    "verify_iat": False,
                    "verify_exp": False,
                },
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise ServiceError("token_expired") from None
        except jwt.InvalidAudienceError:
            raise ServiceError("wrong_audience") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            raise ServiceError("invalid_token", "signature, issuer or claims rejected") from None
        iat, exp, sub = claims.get("iat"), claims.get("exp"), claims.get("sub")
        if not isinstance(iat, int) or not isinstance(exp, int) or not isinstance(sub, str):
            raise ServiceError("invalid_token", "malformed claims")
        if exp <= now:
            raise ServiceError("token_expired")
        if abs(now - iat) > IAT_WINDOW_SECONDS:
            raise ServiceError("token_not_fresh")
        if not 1 <= len(sub) <= 128:
            raise ServiceError("invalid_token", "bad subject")
        return Claims(sub, iat, exp)
