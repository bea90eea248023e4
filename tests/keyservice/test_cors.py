"""Browser access to the key service: CORS for listed origins (preflight included), the
service's own origin, and a refusal with no CORS header for every other origin."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sealroom.api.origins import OriginPolicy, normalize_origin, own_origin
from sealroom.keyservice.settings import Settings

from .conftest import Env

APP = "https://app.example.com"


@pytest.fixture
def cors_env(make_env: Callable[..., Env], tmp_path: Path) -> Iterator[Env]:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>sealroom</title>")
    e = make_env(f"sqlite:///{tmp_path / 'ks.db'}", cors_origins=(APP,), web_root=web)
    yield e
    e.close()


def _jwt(env: Env, user: str) -> dict[str, str]:
    return {"authorization": "Bearer " + env.idp.issue(user, "sealroom-keyservice")}


def test_requests_without_an_origin_are_untouched(cors_env: Env) -> None:
    r = cors_env.http().get("/v1/service")
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_a_listed_origin_gets_cors_and_its_preflight_is_answered(cors_env: Env) -> None:
    r = cors_env.http().get("/v1/service", headers={"origin": APP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert "Origin" in r.headers["vary"]
    pre = cors_env.http().options(
        "/v1/transform",
        headers={
            "origin": APP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, sealroom-signature",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == APP
    allowed = {h.strip() for h in pre.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "sealroom-device", "sealroom-signature"} <= allowed
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in pre.headers


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://app.example.com", "https://app.example.com:8443", "null"],
)
def test_any_other_origin_is_refused_without_cors_and_changes_nothing(
    cors_env: Env, origin: str
) -> None:
    http = cors_env.http()
    pre = http.options(
        "/v1/users", headers={"origin": origin, "access-control-request-method": "POST"}
    )
    assert pre.status_code == 403
    assert "access-control-allow-origin" not in pre.headers
    body = {"public_key": "AA", "signing_key": "AA", "escrow_blob": "AA"}
    r = http.post(
        "/v1/users",
        content=json.dumps(body).encode(),
        headers={"origin": origin, "content-type": "application/json", **_jwt(cors_env, "eve")},
    )
    assert r.status_code == 403
    assert r.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    with cors_env.parts.db.transaction() as tx:
        assert tx.all("SELECT id FROM users") == []


def test_the_services_own_origin_needs_no_listing(cors_env: Env) -> None:
    r = cors_env.http().get("/v1/service", headers={"origin": "http://keyservice"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers  # same origin: no CORS at all


def test_without_configured_origins_every_cross_origin_page_is_refused(
    make_env: Callable[..., Env], tmp_path: Path
) -> None:
    e = make_env(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        assert e.http().get("/v1/service", headers={"origin": APP}).status_code == 403
        assert e.http().get("/v1/service").status_code == 200
    finally:
        e.close()


def test_the_web_client_is_served_from_the_service_origin(
    cors_env: Env, make_env: Callable[..., Env], tmp_path: Path
) -> None:
    r = cors_env.http().get("/web/")
    assert r.status_code == 200
    assert "sealroom" in r.text
    e = make_env(f"sqlite:///{tmp_path / 'noweb.db'}")
    try:
        assert e.http().get("/web/").status_code == 404
    finally:
        e.close()


def test_origins_are_normalized_and_bad_ones_refused(tmp_path: Path) -> None:
    assert normalize_origin("HTTPS://App.Example.com:443/") == APP
    assert normalize_origin("http://127.0.0.1:8470") == "http://127.0.0.1:8470"
    for bad in ["app.example.com", "https://a.example/path", "ftp://a.example", "*", "null"]:
        with pytest.raises(ValueError, match="origin"):
            normalize_origin(bad)
    with pytest.raises(ValueError, match="origin"):
        Settings(jwks_file=Path("x"), cors_origins=("https://ok.example", "*")).validate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kid": "k", "kty": "OKP"}]}))
    env = {
        "SEALROOM_JWKS_FILE": str(jwks),
        "SEALROOM_CORS_ORIGINS": f"{APP},http://localhost:3000",
        "SEALROOM_SECRETS_FILE": str(tmp_path / "secrets.json"),
    }
    assert Settings.from_env(env).cors_origins == (APP, "http://localhost:3000")
    assert own_origin("http", {"host": "Keys.Example:80"}) == "http://keys.example"
    assert own_origin("wss", {"host": "keys.example"}) == "https://keys.example"
    assert own_origin("http", {}) is None
    policy = OriginPolicy([APP], allow_own=False)
    assert not policy.allows("http://keys.example", "http://keys.example")
