"""A key service (or a database insider) invents an admin and has it vouch for a group key
of its own, so that abuse reports sealed to the safety team open for the operator
(issue 9, "an admin invented by the key service"; docs/threat-model.md)."""

from __future__ import annotations

import pytest

from sealroom.api.identity import GROUP_KEY_LABEL, group_key_message
from sealroom.crypto.pre import encrypt, generate_key_pair, generate_plaintext
from sealroom.sdk import KeyChangedError, KeyChangedWarning, SdkError
from tests.keyservice.conftest import Env


def _invent_an_admin(env: Env) -> bytes:
    """The insider's move: a user it controls ('fake-admin'), listed as the safety group's
    admin, vouching for a group key the insider made. Returns that key."""
    with env.client("fake-admin") as fake:
        fake.initialize()
        _, substitute = generate_key_pair()
        statement = fake.client._signer().sign(
            GROUP_KEY_LABEL, group_key_message("safety", substitute.to_bytes())
        )
        edek = encrypt(generate_plaintext(), substitute, fake.client._signer()).to_bytes()
        device = fake.device_id
    with env.parts.db.transaction() as tx:
        tx.execute(
            "INSERT INTO group_admins (group_id, user_id, encrypted_group_key) VALUES (?, ?, ?)",
            ("safety", "fake-admin", edek),
        )
        tx.execute(
            "UPDATE sr_groups SET public_key = ?, key_statement = ?, key_statement_device = ? "
            "WHERE id = 'safety'",
            (substitute.to_bytes(), statement, device),
        )
    return substitute.to_bytes()


def test_admin_invented_by_the_key_service_cannot_vouch_for_a_group_key(env: Env) -> None:
    with env.client("safety-lead") as lead:
        lead.initialize()
        lead.create_group("safety")
    _invent_an_admin(env)
    with env.client("reporter") as reporter:
        reporter.initialize()
        # The application knows who runs its safety team, and says so.
        reporter.expect_group_admins("safety", ["safety-lead"])
        with pytest.raises(SdkError, match="does not expect"):
            reporter.encrypt_document("report-1", b"evidence", groups=["safety"])
        assert "safety" not in reporter.client.ks.pinned_groups
        # Nothing half-done: no document was created at the key service.
        with env.parts.db.read_transaction() as tx:
            assert tx.one("SELECT id FROM documents WHERE id = 'report-1'") is None


def test_a_group_key_pinned_before_the_insider_acts_is_never_replaced(env: Env) -> None:
    with env.client("safety-lead") as lead, env.client("reporter") as reporter:
        lead.initialize()
        reporter.initialize()
        lead.create_group("safety")
        reporter.encrypt_document("report-0", b"first", groups=["safety"])  # pinned now
        _invent_an_admin(env)
        with (
            pytest.warns(KeyChangedWarning),
            pytest.raises(KeyChangedError, match="group safety"),
        ):
            reporter.encrypt_document("report-1", b"second", groups=["safety"])


def test_expected_admins_are_named_as_a_list(env: Env) -> None:
    with env.client("reporter") as reporter:
        with pytest.raises(TypeError):
            reporter.expect_group_admins("safety", "safety-lead")
        with pytest.raises(TypeError):
            reporter.expect_group_admins("safety", [])
