"""Hostile inputs and races found in review: each is refused cleanly, audited, and harmless."""

from __future__ import annotations

import json

import pytest

from sealroom.api.reqsig import sign_request
from sealroom.crypto.pre import generate_key_pair
from sealroom.keyservice.context import Caller, check_id
from sealroom.keyservice.errors import ServiceError
from sealroom.sdk import KeyChangedError, KeyChangedWarning, SdkError, ServiceRefusedError
from tests.security.live_keyservice import drop_audit_guard

from .conftest import Env


def _outcomes(env: Env) -> list[str]:
    with env.parts.db.transaction() as tx:
        return [r["outcome"] for r in tx.all("SELECT outcome FROM audit ORDER BY seq")]


def test_a_swapped_group_key_is_detected_by_creator_and_newcomers(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        _, rogue = generate_key_pair()
        with env.parts.db.transaction() as tx:  # a malicious service swaps the key
            tx.execute("UPDATE sr_groups SET public_key = ? WHERE id = 'team'", (rogue.to_bytes(),))
        with pytest.warns(KeyChangedWarning), pytest.raises(KeyChangedError):
            alice.encrypt_document("d", b"top secret", groups=["team"])
        with pytest.raises(SdkError, match="statement"):
            bob.encrypt_document("d2", b"top secret", groups=["team"])


@pytest.mark.parametrize(
    "headers",
    [
        {
            "sealroom-device": "dev-x",
            "sealroom-timestamp": b"\xb2",
            "sealroom-nonce": "AA",
            "sealroom-signature": "AA",
        },
        {
            "sealroom-device": "dev-x",
            "sealroom-timestamp": "1" * 13,
            "sealroom-nonce": "AA",
            "sealroom-signature": "AA",
        },
    ],
)
def test_odd_signature_headers_are_400(env: Env, headers: dict[str, str | bytes]) -> None:
    r = env.http().get("/v1/devices", headers=headers)
    assert r.status_code == 400


@pytest.mark.parametrize("body", [b'{"id": ' + b"1" * 5000 + b"}", b"[" * 100000])
def test_pathological_json_is_400(env: Env, body: bytes) -> None:
    token = env.idp.issue("alice", "sealroom-keyservice")
    r = env.http().post("/v1/users", content=body, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 400


def test_device_names_must_be_printable(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        user_key = alice._run(alice.client._user_key())
        _, public = generate_key_pair()
        body = alice.client._registration(user_key, "dev-z", "bad\x00name", bytes(32), public)
        token = env.idp.issue("alice", "sealroom-keyservice")
        r = env.http().post(
            "/v1/devices",
            content=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {token}"},
        )
        assert r.status_code == 400


@pytest.mark.parametrize("query", ["after=" + "9" * 30, "limit=-1", "limit=0", "after=x"])
def test_audit_paging_is_bounded(make_env: object, database_url: str, query: str) -> None:
    assert callable(make_env)
    env = make_env(database_url, auditors=("alice",))
    try:
        with env.client("alice") as alice:
            alice.initialize()
            with pytest.raises(ServiceRefusedError, match="malformed_input"):
                alice._run(alice.client._call("GET", "/v1/audit", query=query))
    finally:
        env.close()


def test_a_broken_chain_gets_no_signed_head(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        assert alice.verify_audit().head_signature
        drop_audit_guard(env.parts.db)
        with env.parts.db.transaction() as tx:
            tx.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 1")
        report = alice.verify_audit()
        assert report.ok is False
        assert report.head_signature is None


def test_a_revoked_device_cannot_rotate_or_revoke_even_racing(env: Env) -> None:
    with env.client("alice") as laptop, env.client("alice", "phone") as phone:
        laptop.initialize()
        phone.initialize()
        laptop.revoke_device(phone.client.device_id)
        stale = Caller("alice", phone.client.device_id)  # authenticated just before
        user_key = laptop._run(laptop.client._user_key())
        _, public = generate_key_pair()
        body = laptop.client._registration(user_key, "dev-new", "n", bytes(32), public)
        from sealroom.keyservice.app import _registration

        with pytest.raises(ServiceError, match="device_revoked"):
            env.parts.users.rotate_device(stale, _registration(body))
        with pytest.raises(ServiceError, match="device_revoked"):
            env.parts.users.revoke_device(stale, laptop.client.device_id)


def test_refusals_before_any_operation_are_audited(env: Env) -> None:
    with env.client("alice") as alice, env.client("mallory") as mallory:
        alice.initialize()
        mallory.initialize()
        alice.create_group("team")
        alice.encrypt_document("doc", b"x", users=["alice"])
        before = len(_outcomes(env))
        with pytest.raises(ServiceRefusedError, match="forbidden"):
            mallory._run(mallory.client._call("GET", "/v1/documents/doc/grants"))
        with pytest.raises(ServiceRefusedError, match="forbidden"):
            mallory._run(mallory.client._call("GET", "/v1/audit"))
        assert _outcomes(env)[before:] == ["refused:forbidden", "refused:forbidden"]


def test_content_from_a_device_revoked_as_lost_is_refused(env: Env) -> None:
    with (
        env.client("alice") as laptop,
        env.client("alice", "phone") as phone,
        env.client("bob") as bob,
    ):
        laptop.initialize()
        phone.initialize()
        bob.initialize()
        doc = phone.encrypt_document("from-phone", b"x", users=["bob"])
        assert bob.decrypt_document(doc) == b"x"
        laptop.revoke_device(phone.client.device_id)  # the phone was lost
        bob.client._signers.clear()
        with pytest.raises(SdkError, match="revoked"):
            bob.decrypt_document(doc)


def test_ids_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(ServiceError):
        check_id("team\n", "group id")
    assert check_id("team", "group id") == "team"


def test_a_jwt_subject_that_is_not_a_valid_id_is_refused(env: Env) -> None:
    token = env.idp.issue("bad user\n", "sealroom-keyservice")
    r = env.http().get("/v1/users/me", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_anonymous_refusals_cannot_flood_the_audit_log(make_env: object, database_url: str) -> None:
    assert callable(make_env)
    clock = [1000.0]
    env = make_env(database_url, clock=lambda: clock[0])
    try:

        def ghost() -> None:
            headers = sign_request(
                env.parts.keys.signing_key,
                "dev-ghost",
                method="GET",
                path="/v1/devices",
                query="",
                body=b"",
                now=clock[0],
            )
            assert env.http().get("/v1/devices", headers=headers).status_code == 401

        for _ in range(80):
            ghost()
        added = _outcomes(env)
        assert added == ["refused:unknown_device"] * 50
        clock[0] += 1
        ghost()
        assert _outcomes(env)[-1] == "refused:unknown_device (+30 skipped)"
    finally:
        env.close()


def test_a_non_member_sees_a_groups_public_key_but_not_its_members(env: Env) -> None:
    with env.client("alice") as alice, env.client("mallory") as mallory:
        alice.initialize()
        mallory.initialize()
        alice.create_group("safety")
        view = mallory.group("safety")
        assert view.members is None
        assert view.preapproved is None
        assert mallory.group_public_key("safety") == alice.group_public_key("safety")
