"""Reaching what is not yours at the key service: a removed member asking for transforms, a
revoked device still signing requests, a stranger with a valid login naming another user's
documents, devices and groups (IDOR). Each is refused with its code and changes nothing.
(These held before issue 9; tests/keyservice/ checks the codes through the ASGI app.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sealroom.api.encoding import b64e
from sealroom.api.identity import REVOKE_PROOF_LABEL, user_signing_key
from sealroom.crypto.pre import encrypt, generate_key_pair, generate_plaintext
from sealroom.sdk import ServiceRefusedError, SyncClient
from tests.security.live_keyservice import device_keys, live_keyservice, state


def _refused(code: str, fn: Any, *args: Any) -> None:
    with pytest.raises(ServiceRefusedError) as refused:
        fn(*args)
    assert refused.value.code == code, refused.value


def _group_edek(client: SyncClient, group: str) -> dict[str, Any]:
    """A fresh value encrypted to ``group``, as a transform request body."""
    value = encrypt(generate_plaintext(), client.group_public_key(group), device_keys(client)[0])
    return {"edek": b64e(value.to_bytes()), "target": {"kind": "group", "id": group}}


def test_removed_member_cannot_have_a_group_key_transformed(tmp_path: Path) -> None:
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as alice,
        ks.client("bob") as bob,
    ):
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        before_removal = alice.encrypt_document("minutes", b"x", groups=["team"])
        assert bob.decrypt_document(before_removal) == b"x"
        alice.remove_member("team", "bob")
        after = alice.encrypt_document("plans", b"y", groups=["team"])
        body = _group_edek(alice, "team")
        before = state(ks.parts.db)

        _refused("not_member", bob._call, "POST", "/v1/transform", body)
        _refused("forbidden", bob.decrypt_document, after)
        _refused("forbidden", bob.decrypt_document, before_removal)
        batch = bob._call("POST", "/v1/transform/batch", {"items": [body]})
        assert batch["results"][0]["error"]["code"] == "not_member"
        # Nor can he put himself back: only an admin adds members.
        _refused("not_admin", bob.add_member, "team", "bob")
        _refused("not_admin", bob._call, "GET", "/v1/groups/team/admin-key")
        assert state(ks.parts.db) == before


def test_revoked_device_can_do_nothing(tmp_path: Path) -> None:
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as laptop,
        ks.client("alice", "phone") as phone,
    ):
        laptop.initialize()
        phone.initialize()
        laptop.create_group("team")
        doc = laptop.encrypt_document("notes", b"x", users=["alice"], groups=["team"])
        laptop.revoke_device(phone.client.device_id)
        with ks.parts.db.transaction() as tx:
            row = tx.one(
                "SELECT transform_key FROM devices WHERE id = ?", (phone.client.device_id,)
            )
        assert row is not None
        assert row["transform_key"] is None  # deleted at once
        before = state(ks.parts.db)

        attempts: list[tuple[Any, ...]] = [
            (phone.decrypt_document, doc),
            (phone._call, "POST", "/v1/transform", _group_edek(laptop, "team")),
            (phone.list_devices,),
            (phone.revoke_device, laptop.client.device_id),
            (phone.rotate_device,),
            (phone.create_group, "phones-own"),
            (lambda: phone.encrypt_document("from-phone", b"z", users=["alice"]),),
            (phone._call, "GET", "/v1/groups/team/admin-key"),
        ]
        for fn, *args in attempts:
            _refused("device_revoked", fn, *args)
        # Approving a new device from the revoked one (advanced mode) is refused too.
        user_key = laptop._run(laptop.client._user_key())
        _, public = generate_key_pair()
        body = laptop.client._registration(user_key, "dev-sneaky", "n", bytes(32), public)
        _refused("device_revoked", phone._call, "POST", "/v1/devices", body)
        assert state(ks.parts.db) == before


def test_stranger_with_a_valid_login_cannot_reach_another_users_documents_or_devices(
    tmp_path: Path,
) -> None:
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as alice,
        ks.client("alice", "phone") as phone,
        ks.client("mallory") as mallory,
    ):
        for c in (alice, phone, mallory):
            c.initialize()
        alice.create_group("team")
        doc = alice.encrypt_document("notes", b"alice's notes", users=["alice"])
        laptop_id, phone_id = alice.client.device_id, phone.client.device_id
        mine = mallory.user_public_keys(["mallory"])["mallory"]
        own_key = encrypt(generate_plaintext(), mine, device_keys(mallory)[0])
        stolen_grant = {"edek": b64e(own_key.to_bytes())}
        before = state(ks.parts.db)

        # Alice's document: read, list, grant to herself, revoke alice, delete.
        _refused("forbidden", mallory._call, "GET", "/v1/documents/notes/key")
        _refused("forbidden", mallory._call, "GET", "/v1/documents/notes/grants")
        grant_path = "/v1/documents/notes/grants/user/mallory"
        _refused("forbidden", mallory._call, "PUT", grant_path, stolen_grant)
        _refused("forbidden", mallory._call, "DELETE", "/v1/documents/notes/grants/user/alice")
        _refused("forbidden", mallory._call, "DELETE", "/v1/documents/notes")
        taken = {"id": "notes", "grants": [{"kind": "user", "id": "mallory", **stolen_grant}]}
        _refused("conflict", mallory._call, "POST", "/v1/documents", taken)
        # A user EDEK of alice's, transformed for mallory's device.
        alice_key = alice.user_public_keys(["alice"])["alice"]
        to_alice = encrypt(generate_plaintext(), alice_key, device_keys(alice)[0])
        body = {"edek": b64e(to_alice.to_bytes()), "target": {"kind": "user", "id": "alice"}}
        _refused("forbidden", mallory._call, "POST", "/v1/transform", body)
        # Alice's devices: revoke (device-signed, or with her own JWT and user proof), rotate.
        _refused("not_found", mallory.revoke_device, laptop_id)
        proof = user_signing_key(mallory._run(mallory.client._user_key())).sign(
            REVOKE_PROOF_LABEL, phone_id.encode()
        )
        r = ks.http.post(
            f"/v1/devices/{phone_id}/revoke",
            content=json.dumps({"proof": b64e(proof)}).encode(),
            headers={"authorization": f"Bearer {ks.token('mallory')}"},
        )
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        _refused("forbidden", mallory._call, "POST", f"/v1/devices/{laptop_id}/rotate", {})
        # Alice's group: its key, its members, its deletion.
        _refused("not_admin", mallory._call, "GET", "/v1/groups/team/admin-key")
        _refused("not_admin", mallory._call, "DELETE", "/v1/groups/team/members/alice")
        _refused("not_admin", mallory._call, "DELETE", "/v1/groups/team")
        # What her login does show is hers alone.
        assert [d.id for d in mallory.list_devices()] == [mallory.client.device_id]
        me = mallory._call("GET", "/v1/users/me", auth="jwt")
        assert me["id"] == "mallory"
        assert mallory.group("team").members is None

        assert state(ks.parts.db) == before
        assert alice.decrypt_document(doc) == b"alice's notes"
