"""The HTTP surface: OpenAPI, problem documents, limits, and bad input that changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealroom.api.encoding import b64e
from sealroom.api.reqsig import sign_request
from sealroom.crypto.pre import generate_key_pair
from sealroom.sdk import SyncClient

from .conftest import Env


def _jwt(env: Env, user: str = "alice") -> dict[str, str]:
    return {"authorization": "Bearer " + env.idp.issue(user, "sealroom-keyservice")}


def _device(env: Env, client: SyncClient, method: str, path: str, body: bytes) -> dict[str, str]:
    ks = client.client.ks
    assert ks.signing_key is not None
    assert ks.device_id is not None
    return sign_request(
        ks.signing_key, ks.device_id, method=method, path=path, query="", body=body, now=time.time()
    )


def _count(env: Env, table: str) -> int:
    with env.parts.db.transaction() as tx:
        row = tx.one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


def test_openapi_lists_every_endpoint(env: Env) -> None:
    spec = env.http().get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/transform" in spec["paths"]
    assert "post" in spec["paths"]["/v1/devices"]
    assert len(spec["paths"]) >= 20


def test_service_info_publishes_the_key_to_pin(env: Env) -> None:
    info = env.http().get("/v1/service").json()
    assert info["signing_key"] == b64e(env.parts.ctx.verifying_key.to_bytes())


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        (b'{"signing_key": "AA", "escrow_blob": "AA"}', "public_key"),
        (b'{"public_key": "!!!", "signing_key": "AA", "escrow_blob": "AA"}', "base64url"),
        (
            json.dumps(
                {
                    "public_key": b64e(b"\x01\x01" + bytes(48)),
                    "signing_key": b64e(bytes(32)),
                    "escrow_blob": "AA",
                }
            ).encode(),
            "identity",
        ),
        (
            json.dumps({"public_key": 5, "signing_key": "AA", "escrow_blob": "AA"}).encode(),
            "base64url",
        ),
    ],
)
def test_malformed_bodies_are_400_and_write_nothing(env: Env, body: bytes, detail: str) -> None:
    users = _count(env, "users")
    r = env.http().post("/v1/users", content=body, headers=_jwt(env))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "malformed_input"
    assert detail in r.json()["detail"]
    assert _count(env, "users") == users


def test_body_size_limit(env: Env) -> None:
    big = b"{" + b" " * (2 << 20) + b"}"
    r = env.http().post("/v1/users", content=big, headers=_jwt(env))
    assert r.status_code == 413
    assert r.json()["code"] == "body_too_large"


def test_unknown_route_and_method_are_problems(env: Env) -> None:
    r = env.http().get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = env.http().delete("/v1/service")
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"


def test_rejected_device_registration_leaves_no_row(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        devices = _count(env, "devices")
        good = alice.client._registration  # a registration for some other key
        user_key = alice._run(alice.client._user_key())
        _, wrong_public = generate_key_pair()
        body = good(user_key, "dev-x", "x", bytes(32), wrong_public)
        _, other_public = generate_key_pair()
        body["public_key"] = b64e(other_public.to_bytes())  # the key does not match the tk
        r = env.http().post("/v1/devices", content=json.dumps(body).encode(), headers=_jwt(env))
        assert r.status_code in (400, 403), r.text
        assert _count(env, "devices") == devices


def test_rejected_group_creation_leaves_no_row(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        _, pub = generate_key_pair()
        body = json.dumps(
            {
                "id": "g1",
                "public_key": b64e(pub.to_bytes()),
                "encrypted_group_key": b64e(b"\x01\x11\x00" + bytes(10)),
            }
        ).encode()
        r = env.http().post(
            "/v1/groups", content=body, headers=_device(env, alice, "POST", "/v1/groups", body)
        )
        assert r.status_code == 400
        assert _count(env, "sr_groups") == 0


ENDPOINTS = [
    ("POST", "/v1/users"),
    ("POST", "/v1/users/keys"),
    ("POST", "/v1/devices"),
    ("POST", "/v1/groups"),
    ("POST", "/v1/transform"),
    ("POST", "/v1/transform/batch"),
    ("POST", "/v1/documents"),
    ("PUT", "/v1/groups/g/members/u"),
    ("PUT", "/v1/documents/d/grants/user/u"),
    ("POST", "/v1/groups/g/preapproved"),
    ("POST", "/v1/devices/x/revoke"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["AA", b64e(bytes(48)), b64e(b"\x01\x01" + bytes(48)), "team", "user"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "edek",
                    "target",
                    "kind",
                    "items",
                    "grants",
                    "user_ids",
                    "public_key",
                    "transform_key",
                    "name",
                    "device_id",
                    "proof",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)


_DEVICES: dict[int, SyncClient] = {}


def _fuzz_device(env: Env) -> SyncClient:
    if id(env) not in _DEVICES:
        client = env.client("fuzzer")
        client.initialize()
        env.cleanup.append(client.close)
        _DEVICES.clear()
        _DEVICES[id(env)] = client
    return _DEVICES[id(env)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(endpoint=st.sampled_from(ENDPOINTS), body=json_values)
def test_fuzzed_bodies_never_cause_a_500(env: Env, endpoint: tuple[str, str], body: Any) -> None:
    method, path = endpoint
    raw = json.dumps(body).encode()
    device = _fuzz_device(env)
    for headers in (_jwt(env), {}, _device(env, device, method, path, raw)):
        r = env.http().request(method, path, content=raw, headers=headers)
        assert r.status_code < 500, (endpoint, body, r.text)
        assert r.headers["content-type"].startswith(
            ("application/problem+json", "application/json")
        )
