"""Forward-only groups (meetings): a member opens only values an admin registered after the
member was added, whichever way the value reaches the service."""

from __future__ import annotations

import pytest

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.envelope import Envelope
from sealroom.crypto.pre import (
    encrypt,
    generate_key_pair,
    generate_plaintext,
)
from sealroom.crypto.signing import SigningKey
from sealroom.sdk import ServiceRefusedError, SyncClient, Target
from tests.security.live_keyservice import resigned_as_own

from .conftest import Env


def _refused(code: str) -> pytest.RaisesExc[ServiceRefusedError]:
    return pytest.raises(ServiceRefusedError, match=rf"^{code} ")


def _sealed(alice: SyncClient, doc_id: str, data: bytes) -> Envelope:
    """A value sealed to the meeting group, its EDEK kept by the caller (like a board post)."""
    env = alice.encrypt_document(doc_id, data, groups=["meet"], managed=False)
    return Envelope.from_bytes(env.to_bytes())


def _old_value_then_bob_joins(alice: SyncClient, bob: SyncClient) -> Envelope:
    """A meeting group with one registered value; then bob is added."""
    alice.initialize()
    bob.initialize()
    alice.create_group("meet", forward_only=True)
    old = _sealed(alice, "k0", b"epoch 0")
    _register(alice, "meet", old.edeks[0].to_bytes())
    alice.add_member("meet", "bob")
    return old


def _register(client: SyncClient, group: str, edek: bytes) -> None:
    """Register a value, naming the group's members as they are now (these tests are not
    about who is in the group: tests/security covers that)."""
    members = client.group(group).members or []
    client.register_group_value(group, edek, members=members)


def _open(client: SyncClient, env: Envelope) -> bytes:
    return bytes(client.decrypt_unmanaged(env, 0, Target.group("meet")))


def test_a_joiner_cannot_open_values_registered_before_it_joined(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        assert alice.group("meet").forward_only is True
        old = _sealed(alice, "k0", b"epoch 0")
        _register(alice, "meet", old.edeks[0].to_bytes())
        assert _open(alice, old) == b"epoch 0"

        alice.add_member("meet", "bob")
        with _refused("before_membership"):
            _open(bob, old)
        _register(alice, "meet", old.edeks[0].to_bytes())  # no refresh
        with _refused("before_membership"):
            _open(bob, old)

        new = _sealed(alice, "k1", b"epoch 1")
        _register(alice, "meet", new.edeks[0].to_bytes())
        assert _open(bob, new) == b"epoch 1"
        assert _open(alice, new) == b"epoch 1"

        unregistered = _sealed(alice, "k2", b"never registered")
        for client in (alice, bob):
            with _refused("before_membership"):
                _open(client, unregistered)
        with _refused("not_admin"):
            _register(bob, "meet", unregistered.edeks[0].to_bytes())


def test_rewrapping_an_old_value_as_a_document_does_not_get_around_it(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        old = _old_value_then_bob_joins(alice, bob)

        # Bob, now a member, files the old EDEK as a managed document granted to the group.
        def file_as_document(doc_id: str, edek: bytes) -> None:
            grant = {"kind": "group", "id": "meet", "edek": b64e(edek)}
            bob._call("POST", "/v1/documents", {"id": doc_id, "grants": [grant]})

        with _refused("forbidden"):  # as it is: a grant key must come from his own devices
            file_as_document("rewrap", old.edeks[0].to_bytes())
        file_as_document("rewrap", resigned_as_own(old.edeks[0].to_bytes(), bob))
        with _refused("before_membership"):
            bob._call("GET", "/v1/documents/rewrap/key")


def test_a_removed_and_readded_member_starts_again(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        alice.add_member("meet", "bob")
        first = _sealed(alice, "k0", b"while bob was in")
        _register(alice, "meet", first.edeks[0].to_bytes())
        assert _open(bob, first) == b"while bob was in"
        alice.remove_member("meet", "bob")
        alice.add_member("meet", "bob")
        with _refused("before_membership"):
            _open(bob, first)
        alice.delete_group("meet")  # registered values go with the group
        with _refused("not_found"):
            alice.group("meet")


def test_ordinary_groups_share_their_history_and_bad_flags_are_refused(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        assert alice.group("team").forward_only is False
        doc = alice.encrypt_document("minutes", b"from before bob", groups=["team"])
        alice.add_member("team", "bob")
        assert bob.decrypt_document(doc) == b"from before bob"
        _, public = generate_key_pair()
        edek = encrypt(generate_plaintext(), public, SigningKey.generate()).to_bytes()
        body = {"id": "x", "public_key": b64e(public.to_bytes()), "encrypted_group_key": b64e(edek)}
        with _refused("malformed_input"):
            alice._call("POST", "/v1/groups", {**body, "forward_only": 1})
        with _refused("not_found"):
            alice.group("x")


def test_a_later_admin_cannot_reregister_an_old_value_under_its_own_signature(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        old = _old_value_then_bob_joins(alice, bob)
        alice.add_admin("meet", "bob")
        # Bob re-signs the old value's (R, C) as its origin and registers the copy.
        resigned = resigned_as_own(old.edeks[0].to_bytes(), bob)
        assert resigned != old.edeks[0].to_bytes()
        assert bob.claim_group_management("meet") == "alice"  # bob manages the meeting now
        _register(bob, "meet", resigned)  # the same R: still the old generation
        with _refused("before_membership"):
            bob._call(
                "POST",
                "/v1/transform",
                {"edek": b64e(resigned), "target": {"kind": "group", "id": "meet"}},
            )


def test_registration_is_for_forward_only_groups_and_a_document_uses_a_grant_that_opens(
    env: Env,
) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("meet", forward_only=True)
        alice.create_group("team")
        sealed = _sealed(alice, "k0", b"x")
        with _refused("malformed_input"):
            _register(alice, "team", sealed.edeks[0].to_bytes())
        # A document granted to both groups, made before bob joined either: "meet" refuses
        # him (it sorts first), "team" shares its history, so he gets in through "team".
        doc = alice.encrypt_document("both", b"agenda", groups=["meet", "team"])
        alice.add_member("meet", "bob")
        alice.add_member("team", "bob")
        assert bob.decrypt_document(doc) == b"agenda"
        info = bob._call("GET", "/v1/documents/both/key")
        assert info["via"] == "group:team"
        assert b64d(info["edek"], "edek")
