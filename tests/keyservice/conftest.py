"""Fixtures: a development IdP, a key service on SQLite or PostgreSQL, and SDK clients.

PostgreSQL tests use a fresh schema per test, dropped afterwards. Without a server on
127.0.0.1:5432 they are skipped, saying so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sealroom.idp import PROVIDER_AUDIENCE, DevIdp
from sealroom.keyservice.app import KeyServiceApp, create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from sealroom.sdk import BasicSplitTrust, Password, SyncClient
from tests.databases import BACKENDS, fresh_database_url


@pytest.fixture
def idp(tmp_path: Path) -> DevIdp:
    return DevIdp(tmp_path / "idp")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@dataclass
class Env:
    app: Starlette
    parts: KeyServiceApp
    idp: DevIdp
    tmp: Path

    def client(
        self, user: str, device: str = "laptop", *, password: str | None = None, **kwargs: object
    ) -> SyncClient:
        idp = self.idp

        def jwt(audience: str) -> str:
            return idp.issue(user, audience)

        secret = (
            Password(lambda: password)
            if password
            else BasicSplitTrust(lambda: idp.escrow_half(idp.issue(user, PROVIDER_AUDIENCE)))
        )
        return SyncClient(
            "http://keyservice",
            jwt=jwt,
            secret=secret,
            keystore=self.tmp / user / f"{device}.json",
            device_name=device,
            transport=httpx.ASGITransport(app=self.app),
            **kwargs,
        )

    _http: httpx.Client | None = None
    cleanup: list[Callable[[], object]] = dataclasses.field(default_factory=list)

    def http(self) -> httpx.Client:
        """A raw client for hostile requests (sync, through the ASGI app)."""
        if self._http is None:
            self._http = httpx.Client(transport=_SyncASGI(self.app), base_url="http://keyservice")
        return self._http

    def close(self) -> None:
        for fn in self.cleanup:
            fn()
        if self._http is not None:
            self._http.close()
        self.parts.db.close()


class _SyncASGI(httpx.BaseTransport):
    def __init__(self, app: Starlette) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return self._loop.run_until_complete(run())

    def close(self) -> None:
        self._loop.close()


@pytest.fixture
def make_env(idp: DevIdp, tmp_path: Path) -> Callable[..., Env]:
    def make(
        database_url: str, clock: Callable[[], float] | None = None, **settings: object
    ) -> Env:
        s = Settings(
            database_url=database_url,
            secrets_file=tmp_path / "secrets.json",
            jwt_issuer=idp.issuer,
            jwks_file=tmp_path / "unused",
            **settings,
        )  # type: ignore[arg-type]
        app = create_app(s, clock=clock, jwks=JwksSource(document=idp.jwks))
        return Env(app, app.state.parts, idp, tmp_path)

    return make


@pytest.fixture
def env(make_env: Callable[..., Env], database_url: str) -> Iterator[Env]:
    e = make_env(database_url)
    yield e
    e.close()
