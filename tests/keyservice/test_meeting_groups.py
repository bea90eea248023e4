"""Meeting (forward-only) groups at the key service: one manager changes them, bans last
until lifted, and a value is registered only with the group's exact member list."""

from __future__ import annotations

import pytest

from sealroom.crypto.envelope import Envelope
from sealroom.sdk import ServiceRefusedError, SyncClient

from .conftest import Env


def _refused(code: str) -> pytest.RaisesExc[ServiceRefusedError]:
    return pytest.raises(ServiceRefusedError, match=rf"^{code} ")


def _edek(alice: SyncClient, doc_id: str) -> bytes:
    env = alice.encrypt_document(doc_id, b"key", groups=["meet"], managed=False)
    return Envelope.from_bytes(env.to_bytes()).edeks[0].to_bytes()


def _audit_actions(env: Env) -> list[tuple[str, str, str]]:
    with env.parts.db.read_transaction() as tx:
        rows = tx.all("SELECT actor_user, action, outcome FROM audit ORDER BY seq")
    return [(r["actor_user"], r["action"], r["outcome"]) for r in rows]


def test_only_the_manager_changes_a_meeting_group(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob, env.client("carl") as carl:
        for c in (alice, bob, carl):
            c.initialize()
        alice.create_group("meet", forward_only=True)
        alice.add_admin("meet", "bob")
        assert alice.group("meet").manager == "alice"
        for attempt in (
            lambda: bob.add_member("meet", "carl"),
            lambda: bob.remove_member("meet", "alice"),
            lambda: bob.add_admin("meet", "carl"),
            lambda: bob.remove_admin("meet", "alice"),
            lambda: bob.preapprove("meet", ["carl"]),
            lambda: bob.ban_member("meet", "carl"),
            lambda: bob.register_group_value("meet", _edek(alice, "k0"), members=["alice"]),
            lambda: bob.delete_group("meet"),
        ):
            with _refused("not_manager"):
                attempt()
        assert alice.group("meet").members == ["alice"]
        with _refused("not_found"):  # leaving is one's own call, open to any member
            bob.remove_member("meet", "bob")
        with _refused("not_admin"):
            carl.claim_group_management("meet")


def test_a_claim_is_loud_the_old_manager_is_refused_and_the_audit_shows_it(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob, env.client("carl") as carl:
        for c in (alice, bob, carl):
            c.initialize()
        alice.create_group("meet", forward_only=True)
        alice.add_admin("meet", "bob")
        assert bob.claim_group_management("meet") == "alice"
        bob.add_member("meet", "carl")
        with _refused("not_manager"):
            alice.remove_member("meet", "carl")
        assert ("bob", "claim_manager", "ok") in _audit_actions(env)
        assert alice.claim_group_management("meet") == "bob"
        alice.remove_member("meet", "carl")


def test_a_ban_takes_membership_and_admin_rights_and_lasts_until_lifted(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        alice.add_member("meet", "bob")
        alice.add_admin("meet", "bob")
        alice.ban_member("meet", "bob")
        info = alice.group("meet")
        assert info.banned == ["bob"]
        assert "bob" not in (info.members or [])
        assert "bob" not in info.admins
        with _refused("not_admin"):  # a banned admin cannot claim its way back in
            bob.claim_group_management("meet")
        with _refused("banned"):
            alice.add_member("meet", "bob")
        alice.ban_member("meet", "bob")  # again: no change, no error
        alice.lift_ban("meet", "bob")
        alice.add_member("meet", "bob")
        assert alice.group("meet").banned == []
        with _refused("conflict"):
            alice.ban_member("meet", "alice")


def test_a_value_is_registered_only_with_the_exact_member_list(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        alice.add_member("meet", "bob")
        for wrong in (["alice"], ["alice", "bob", "carl"], [], ["bob"]):
            with _refused("membership_mismatch"):
                alice.register_group_value("meet", _edek(alice, "k0"), members=wrong)
        edek = _edek(alice, "k1")
        alice.register_group_value("meet", edek, members=["bob", "alice", "bob"])
        # Registered once: naming other members later changes nothing, and is no error.
        alice.register_group_value("meet", edek, members=["alice"])
        bad = {"edek": "AAAA", "members_digest": "AAAA"}
        with _refused("malformed_input"):
            alice._call("POST", "/v1/groups/meet/values", bad)
        with _refused("malformed_input"):
            alice._call("POST", "/v1/groups/meet/values", {"edek": bad["edek"]})


def test_bans_and_claims_are_for_meeting_groups_only(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_admin("team", "bob")
        with _refused("malformed_input"):
            alice.ban_member("team", "bob")
        with _refused("malformed_input"):
            bob.claim_group_management("team")
        bob.add_member("team", "alice")  # an ordinary group: any admin manages it
        assert alice.group("team").manager is None


def test_many_members_are_added_in_one_request_each_answered_alone(env: Env) -> None:
    users = [f"user{i}" for i in range(5)]
    with env.client("alice") as alice:
        alice.initialize()
        for u in users:
            with env.client(u) as c:
                c.initialize()
        alice.create_group("meet", forward_only=True)
        alice.ban_member("meet", "user3")
        outcome = alice.add_members("meet", [*users, "nobody"])
        assert outcome == {
            "user0": None,
            "user1": None,
            "user2": None,
            "user3": "banned",
            "user4": None,
            "nobody": "not_found",
        }
        assert alice.group("meet").members == ["alice", "user0", "user1", "user2", "user4"]
        audit = _audit_actions(env)
        assert ("alice", "add_member", "refused:banned") in audit
        assert sum(a == ("alice", "add_member", "ok") for a in audit) == 5  # alice + 4


def test_a_batch_of_additions_is_checked_as_a_whole_first(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        path = "/v1/groups/meet/members"
        for body in (
            {"members": []},
            {"members": "bob"},
            {"members": [{"user": "bob"}]},
            {"members": ["bob"]},
            {"members": [{"user": "bob", "transform_key": "AA"}] * 2},
            {"members": [{"user": "bad id", "transform_key": "AA"}]},
            {"members": [{"user": f"u{i}", "transform_key": "AA"} for i in range(257)]},
        ):
            with _refused("malformed_input"):
                alice._call("POST", path, body)
        alice.add_admin("meet", "bob")
        with _refused("not_manager"):
            bob.add_members("meet", ["bob"])
        assert alice.group("meet").members == ["alice"]
