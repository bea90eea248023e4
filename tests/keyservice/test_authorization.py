"""Every unauthorized request is refused with its own code and leaves an audit entry."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sealroom.api.encoding import b64e
from sealroom.api.reqsig import sign_request
from sealroom.crypto.pre import encrypt, generate_plaintext
from sealroom.sdk import ServiceRefusedError, SyncClient

from .conftest import Env


def _audit_outcomes(env: Env) -> list[tuple[str | None, str, str]]:
    with env.parts.db.transaction() as tx:
        rows = tx.all("SELECT actor_user, action, outcome FROM audit ORDER BY seq")
    return [(r["actor_user"], r["action"], r["outcome"]) for r in rows]


def _refused_and_audited(env: Env, code: str, fn: object) -> None:
    assert callable(fn)
    before = len(_audit_outcomes(env))
    with pytest.raises(ServiceRefusedError) as exc:
        fn()
    assert exc.value.code == code
    new = _audit_outcomes(env)[before:]
    assert any(outcome == f"refused:{code}" for _, _, outcome in new), new


def _signed(
    env: Env,
    client: SyncClient,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    now: float | None = None,
    nonce: bytes | None = None,
) -> httpx.Response:
    ks = client.client.ks
    assert ks.signing_key is not None
    assert ks.device_id is not None
    headers = sign_request(
        ks.signing_key,
        ks.device_id,
        method=method,
        path=path,
        query="",
        body=body,
        now=time.time() if now is None else now,
        nonce=nonce,
    )
    return env.http().request(method, path, content=body, headers=headers)


def _group_edek(alice: SyncClient) -> str:
    pub = alice.group_public_key("team")
    return b64e(encrypt(generate_plaintext(), pub, alice.client.ks.signing_key).to_bytes())


def test_non_member_is_refused(env: Env) -> None:
    with env.client("alice") as alice, env.client("mallory") as mallory:
        alice.initialize()
        mallory.initialize()
        alice.create_group("team")
        edek = _group_edek(alice)
        _refused_and_audited(
            env,
            "not_member",
            lambda: mallory._run(
                mallory.client._call(
                    "POST",
                    "/v1/transform",
                    {"edek": edek, "target": {"kind": "group", "id": "team"}},
                )
            ),
        )


def test_removed_member_is_refused(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        edek = _group_edek(alice)
        body = {"edek": edek, "target": {"kind": "group", "id": "team"}}
        bob._run(bob.client._call("POST", "/v1/transform", body))
        alice.remove_member("team", "bob")
        _refused_and_audited(
            env, "not_member", lambda: bob._run(bob.client._call("POST", "/v1/transform", body))
        )


def test_revoked_device_is_refused(env: Env) -> None:
    with env.client("alice") as laptop, env.client("alice", "phone") as phone:
        laptop.initialize()
        phone.initialize()
        laptop.revoke_device(phone.client.device_id)
        _refused_and_audited(env, "device_revoked", phone.list_devices)


def test_device_of_another_user_is_refused(env: Env) -> None:
    with env.client("alice") as alice, env.client("mallory") as mallory:
        alice.initialize()
        mallory.initialize()
        pub = alice.user_public_keys(["alice"])["alice"]
        edek = b64e(encrypt(generate_plaintext(), pub, alice.client.ks.signing_key).to_bytes())
        body = {"edek": edek, "target": {"kind": "user", "id": "alice"}}
        _refused_and_audited(
            env,
            "forbidden",
            lambda: mallory._run(mallory.client._call("POST", "/v1/transform", body)),
        )
        _refused_and_audited(
            env, "not_found", lambda: mallory.revoke_device(alice.client.device_id)
        )


def test_replayed_request_is_refused(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        nonce = b"\x07" * 16
        now = time.time()
        body = json.dumps({"user_ids": ["alice"]}).encode()
        first = _signed(env, alice, "POST", "/v1/users/keys", body=body, now=now, nonce=nonce)
        assert first.status_code == 200
        before = len(_audit_outcomes(env))
        second = _signed(env, alice, "POST", "/v1/users/keys", body=body, now=now, nonce=nonce)
        assert second.status_code == 401
        assert second.json()["code"] == "replayed_request"
        assert second.headers["content-type"] == "application/problem+json"
        # Recorded, but not as alice's: a replay proves only that she signed it once.
        assert (None, "authenticate", "refused:replayed_request") in _audit_outcomes(env)[before:]


def test_a_replayed_change_is_refused_and_changes_nothing(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        nonce = b"\x08" * 16
        now = time.time()
        path = "/v1/groups/team/admins/bob"
        first = _signed(env, alice, "DELETE", path, now=now, nonce=nonce)
        assert first.json()["code"] == "not_found"  # refused: bob is no admin yet...
        alice.add_admin("team", "bob")
        again = _signed(env, alice, "DELETE", path, now=now, nonce=nonce)
        assert again.json()["code"] == "replayed_request"  # ...and the replay stays refused
        assert "bob" in alice.group("team").admins


def test_a_signed_read_writes_nothing(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        _signed(env, alice, "GET", "/v1/devices")  # last use noted, at most once a minute

        def state() -> tuple[int, int, object]:
            with env.parts.db.read_transaction() as tx:
                nonces = tx.one("SELECT COUNT(*) AS n FROM nonces")
                audit = tx.one("SELECT COUNT(*) AS n FROM audit")
                used = tx.one("SELECT last_used_at FROM devices")
            assert nonces is not None
            assert audit is not None
            assert used is not None
            return int(nonces["n"]), int(audit["n"]), used["last_used_at"]

        before = state()
        for _ in range(5):
            assert _signed(env, alice, "GET", "/v1/devices").status_code == 200
        assert state() == before


@pytest.mark.parametrize(("skew", "code"), [(-600, "stale_request"), (600, "stale_request")])
def test_stale_timestamp_is_refused(env: Env, skew: int, code: str) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        r = _signed(env, alice, "GET", "/v1/devices", now=time.time() + skew)
        assert r.status_code == 401
        assert r.json()["code"] == code


def test_tampered_request_is_refused(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        ks = alice.client.ks
        assert ks.signing_key is not None
        assert ks.device_id is not None
        headers = sign_request(
            ks.signing_key,
            ks.device_id,
            method="POST",
            path="/v1/users/keys",
            query="",
            body=b'{"user_ids":["a"]}',
            now=time.time(),
        )
        r = env.http().post("/v1/users/keys", content=b'{"user_ids":["b"]}', headers=headers)
        assert r.json()["code"] == "bad_signature"
        headers = sign_request(
            ks.signing_key,
            "dev-unknown",
            method="GET",
            path="/v1/devices",
            query="",
            body=b"",
            now=time.time(),
        )
        assert env.http().get("/v1/devices", headers=headers).json()["code"] == "unknown_device"


def _token_call(env: Env, token: str) -> httpx.Response:
    return env.http().get("/v1/users/me", headers={"authorization": f"Bearer {token}"})


def _check(env: Env, token: str, code: str) -> None:
    before = len(_audit_outcomes(env))
    r = _token_call(env, token)
    assert r.status_code == 401
    assert r.json()["code"] == code
    assert (None, "authenticate", f"refused:{code}") in _audit_outcomes(env)[before:]


def test_expired_jwt_is_refused(env: Env) -> None:
    _check(
        env, env.idp.issue("alice", "sealroom-keyservice", now=time.time() - 3600), "token_expired"
    )


def test_jwt_issued_too_long_ago_or_ahead_is_refused(env: Env) -> None:
    claims = {
        "iss": env.idp.issuer,
        "sub": "alice",
        "aud": "sealroom-keyservice",
        "iat": int(time.time()) + 300,
        "exp": int(time.time()) + 900,
    }
    token = jwt.encode(claims, env.idp._key, algorithm="ES256", headers={"kid": env.idp.kid})
    _check(env, token, "token_not_fresh")


def test_forged_jwt_is_refused(env: Env) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    claims = {
        "iss": env.idp.issuer,
        "sub": "alice",
        "aud": "sealroom-keyservice",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    token = jwt.encode(claims, forger, algorithm="ES256", headers={"kid": env.idp.kid})
    _check(env, token, "invalid_token")
    _check(env, "not.a.jwt", "invalid_token")
    none_alg = jwt.encode(claims, None, algorithm="none", headers={"kid": env.idp.kid})
    _check(env, none_alg, "invalid_token")


def test_jwt_for_another_audience_is_refused(env: Env) -> None:
    _check(env, env.idp.issue("alice", "sealroom-provider"), "wrong_audience")


def test_jwt_from_another_issuer_is_refused(env: Env) -> None:
    claims = {
        "iss": "someone-else",
        "sub": "alice",
        "aud": "sealroom-keyservice",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    token = jwt.encode(claims, env.idp._key, algorithm="ES256", headers={"kid": env.idp.kid})
    _check(env, token, "invalid_token")


def test_every_refusal_is_a_problem_document_without_secrets(env: Env) -> None:
    r = env.http().get("/v1/devices")
    assert r.status_code == 401
    problem = r.json()
    assert set(problem) == {"type", "title", "status", "code", "detail"}
    assert json.dumps(problem).count("Bearer") == 0
