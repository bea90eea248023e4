"""End to end through the SDK: users, devices, groups, transforms, documents, pinning."""

from __future__ import annotations

import warnings

import pytest

from sealroom.crypto.envelope import Envelope
from sealroom.errors import WrongSecretError
from sealroom.sdk import KeyChangedError, KeyChangedWarning, ServiceRefusedError, Target

from .conftest import Env


def _refused(code: str) -> pytest.RaisesExc[ServiceRefusedError]:
    return pytest.raises(ServiceRefusedError, match=rf"^{code} ")


def test_first_use_creates_user_and_device(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        assert alice.client.ks.registered
        assert [d.name for d in alice.list_devices()] == ["laptop"]
        assert (env.tmp / "alice" / "laptop.json").stat().st_mode & 0o777 == 0o600
        alice.initialize()  # idempotent once registered
        assert len(alice.list_devices()) == 1


def test_second_device_recovers_the_user_key_from_split_escrow(env: Env) -> None:
    with env.client("alice") as laptop, env.client("alice", "phone") as phone:
        laptop.initialize()
        envelope = laptop.encrypt_document("d1", b"hello", users=["alice"])
        phone.initialize()
        assert phone.decrypt_document(envelope) == b"hello"
        assert sorted(d.name for d in phone.list_devices()) == ["laptop", "phone"]


def test_password_mode_and_wrong_password(env: Env) -> None:
    with env.client("carol", password="correct horse") as first:
        first.initialize()
    with env.client("carol", "tablet", password="wrong") as second, pytest.raises(WrongSecretError):
        second.initialize()
    with env.client("carol", "tablet2", password="correct horse") as third:
        third.initialize()


def test_device_approval_by_an_existing_device(env: Env) -> None:
    with env.client("dave", password="pw") as old, env.client("dave", "new", password="x") as new:
        old.initialize()
        envelope = old.encrypt_document("d2", b"for dave", users=["dave"])
        payload = new.request_approval("dave")
        assert payload.startswith("sealroom-approve:v1:")
        old.approve_device(payload)
        new.complete_approval()
        assert new.decrypt_document(envelope) == b"for dave"


def test_group_document_roundtrip_and_removal(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        doc = alice.encrypt_document("doc-1", b"minutes", groups=["team"])
        assert bob.decrypt_document(doc) == b"minutes"
        assert bob.list_groups() == ["team"]
        info = alice.group("team")
        assert info.admins == ["alice"]
        assert info.members == ["alice", "bob"]  # the creator joins its group
        alice.remove_member("team", "bob")
        with _refused("forbidden"):
            bob.decrypt_document(doc)


def test_admins_and_preapproval(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob, env.client("eve") as eve:
        for c in (alice, bob, eve):
            c.initialize()
        alice.create_group("g")
        alice.preapprove("g", ["eve", "not-yet-a-user"])
        assert alice.group("g").preapproved == ["eve", "not-yet-a-user"]
        alice.add_admin("g", "bob")
        bob.add_member("g", "eve")  # bob, now an admin, recovered the group key
        assert alice.group("g").preapproved == ["not-yet-a-user"]
        doc = alice.encrypt_document("d", b"x", groups=["g"])
        assert eve.decrypt_document(doc) == b"x"
        with _refused("not_admin"):
            eve.add_member("g", "alice")
        alice.remove_admin("g", "bob")
        with _refused("conflict"):
            alice.remove_admin("g", "alice")
        alice.delete_group("g")
        with _refused("not_found"):
            alice.group("g")


def test_grant_and_revoke_later_without_reencrypting(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        doc = alice.encrypt_document("report", b"numbers", users=["alice"])
        with _refused("forbidden"):
            bob.decrypt_document(doc)
        alice.grant(doc, Target.user("bob"))
        assert bob.decrypt_document(doc) == b"numbers"
        alice.revoke("report", Target.user("bob"))
        with _refused("forbidden"):
            bob.decrypt_document(doc)


def test_unmanaged_documents(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        doc = alice.encrypt_document(
            "u1", b"caller keeps EDEKs", users=["alice", "bob"], managed=False
        )
        doc = Envelope.from_bytes(doc.to_bytes())
        assert bob.decrypt_unmanaged(doc, 1, Target.user("bob")) == b"caller keeps EDEKs"
        with _refused("forbidden"):
            bob.decrypt_unmanaged(doc, 0, Target.user("alice"))


def test_revoked_device_can_do_nothing(env: Env) -> None:
    with env.client("alice") as laptop, env.client("alice", "phone") as phone:
        laptop.initialize()
        phone.initialize()
        doc = laptop.encrypt_document("d", b"x", users=["alice"])
        laptop.revoke_device(phone.client.device_id)
        with _refused("device_revoked"):
            phone.decrypt_document(doc)
        assert laptop.decrypt_document(doc) == b"x"


def test_revoke_with_jwt_and_escrow_when_no_device_is_left(env: Env) -> None:
    with env.client("alice") as laptop, env.client("alice", "recovery") as recovery:
        laptop.initialize()
        recovery.client.ks.user_id = "alice"
        recovery.revoke_device_with_escrow(laptop.client.device_id)
        with _refused("device_revoked"):
            laptop.list_devices()


def test_rotation_replaces_the_device_key(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        doc = alice.encrypt_document("d", b"before", users=["alice"])
        old_id = alice.client.device_id
        new_id = alice.rotate_device()
        assert new_id != old_id
        assert alice.decrypt_document(doc) == b"before"
        listed = {d.id: d for d in alice.list_devices()}
        assert listed[old_id].revoked_at is not None
        assert listed[new_id].revoked_at is None


def test_changed_user_key_warns_and_refuses(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.user_public_keys(["bob"])
        with env.parts.db.transaction() as tx:  # a malicious service swaps bob's key
            other = tx.one("SELECT public_key FROM users WHERE id = ?", ("alice",))
            assert other is not None
            tx.execute("UPDATE users SET public_key = ? WHERE id = ?", (other["public_key"], "bob"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KeyChangedError):
                alice.user_public_keys(["bob"])
        assert any(issubclass(w.category, KeyChangedWarning) for w in caught)
        with pytest.warns(KeyChangedWarning), pytest.raises(KeyChangedError):
            alice.encrypt_document("d", b"x", users=["bob"])


def test_application_can_accept_a_key_change(env: Env) -> None:
    seen: list[str] = []

    def accept(subject: str, old: bytes, new: bytes) -> bool:
        seen.append(subject)
        return True

    with env.client("alice", on_key_change=accept) as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.user_public_keys(["bob"])
        with env.parts.db.transaction() as tx:
            tx.execute(
                "UPDATE users SET public_key = (SELECT public_key FROM users WHERE "
                "id = 'alice') WHERE id = 'bob'"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KeyChangedWarning)
            alice.user_public_keys(["bob"])
        assert seen == ["user bob"]


def test_streamed_artifact_for_a_group_read_from_any_current_device(env: Env) -> None:
    import io

    with (
        env.client("alice") as alice,
        env.client("bob") as bob,
        env.client("bob", "tablet") as tablet,
    ):
        alice.initialize()
        bob.initialize()
        alice.create_group("attendees")
        alice.add_member("attendees", "bob")
        recording = bytes(i % 256 for i in range(200_000))
        sealed = io.BytesIO()
        alice.encrypt_stream(
            "rec-1", io.BytesIO(recording), sealed, groups=["attendees"], chunk_size=16384
        )
        tablet.initialize()  # a device bob adds after the meeting
        out = io.BytesIO()
        opened = tablet.decrypt_stream(io.BytesIO(sealed.getvalue()), out)
        assert (opened.size, opened.sealer.user_id, opened.owner) == (
            len(recording),
            "alice",
            "alice",
        )
        assert out.getvalue() == recording
        bob.revoke_device(tablet.client.device_id)
        with _refused("device_revoked"):
            tablet.decrypt_stream(io.BytesIO(sealed.getvalue()), io.BytesIO())


def test_a_stream_is_granted_later_without_reencrypting(env: Env) -> None:
    import io

    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        sealed = io.BytesIO()
        alice.encrypt_stream("rec-2", io.BytesIO(b"r" * 50_000), sealed, users=["alice"])
        with _refused("forbidden"):
            bob.decrypt_stream(io.BytesIO(sealed.getvalue()), io.BytesIO())
        alice.grant("rec-2", Target.user("bob"))
        out = io.BytesIO()
        bob.decrypt_stream(io.BytesIO(sealed.getvalue()), out)
        assert out.getvalue() == b"r" * 50_000
        alice.revoke("rec-2", Target.user("bob"))
        with _refused("forbidden"):
            bob.decrypt_stream(io.BytesIO(sealed.getvalue()), io.BytesIO())


def test_a_grant_from_another_device_of_the_owner_opens_docs_and_streams(env: Env) -> None:
    import io

    with (
        env.client("alice") as laptop,
        env.client("alice", "phone") as phone,
        env.client("bob") as bob,
    ):
        laptop.initialize()
        phone.initialize()
        bob.initialize()
        doc = laptop.encrypt_document("d-g", b"doc", users=["alice"])
        sealed = io.BytesIO()
        laptop.encrypt_stream("s-g", io.BytesIO(b"s" * 40_000), sealed, users=["alice"])
        phone.grant("d-g", Target.user("bob"))
        phone.grant("s-g", Target.user("bob"))
        assert bob.decrypt_document(doc) == b"doc"
        out = io.BytesIO()
        bob.decrypt_stream(io.BytesIO(sealed.getvalue()), out)
        assert out.getvalue() == b"s" * 40_000


def test_forged_stream_chunks_never_reach_the_output(env: Env) -> None:
    import hashlib
    import io

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from sealroom.crypto.pre import derive_symmetric_key
    from sealroom.crypto.stream import _aad, _nonce, read_header
    from sealroom.errors import DecryptionError

    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        sealed = io.BytesIO()
        alice.encrypt_stream("s-f", io.BytesIO(b"genuine"), sealed, users=["bob"])
        raw = sealed.getvalue()
        head, header_raw = read_header(io.BytesIO(raw))
        source = bob._run(bob.client._unwrap_for("s-f"))  # bob knows the DEK
        aead = AESGCM(derive_symmetric_key(source).expose_secret_bytes())
        digest = hashlib.sha256(header_raw).digest()
        chunk = aead.encrypt(_nonce(head.prefix, 0, True), b"PAY MALLORY", _aad(digest, 0, True))
        forged = raw[: 4 + len(header_raw)] + len(chunk).to_bytes(4, "big") + chunk + raw[-64:]
        out = io.BytesIO()
        with pytest.raises(DecryptionError):
            bob.decrypt_stream(io.BytesIO(forged), out)
        assert out.getvalue() == b""
