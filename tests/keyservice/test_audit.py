"""The audit log: every write and transform is recorded, the chain verifies, and an edited,
deleted or truncated log is caught by the endpoint and by the CLI."""

from __future__ import annotations

import pytest

from sealroom.cli import main
from sealroom.sdk import AuditReport
from tests.security.live_keyservice import drop_audit_guard

from .conftest import Env


def _activity(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        doc = alice.encrypt_document("d", b"x", groups=["team"])
        bob.decrypt_document(doc)


def _report(env: Env) -> AuditReport:
    with env.client("alice") as alice:
        alice.initialize()
        return alice.verify_audit()


def _cli(env: Env) -> int:
    url = env.parts.settings.database_url
    return main(
        [
            "audit",
            "verify",
            "--database-url",
            url,
            "--secrets-file",
            str(env.parts.settings.secrets_file),
        ]
    )


def _unprotect(env: Env) -> None:
    """An attacker with database access removes the append-only guard."""
    drop_audit_guard(env.parts.db)


def test_actions_are_recorded_and_the_chain_verifies(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    _activity(env)
    with env.parts.db.transaction() as tx:
        actions = {r["action"] for r in tx.all("SELECT action FROM audit")}
    assert {
        "create_user",
        "register_device",
        "create_group",
        "add_member",
        "create_document",
        "unwrap_document",
    } <= actions
    report = _report(env)
    assert report.ok is True
    assert _cli(env) == 0
    assert "audit log OK" in capsys.readouterr().out


def test_the_log_is_append_only(env: Env) -> None:
    _activity(env)
    with pytest.raises(Exception, match="append-only"), env.parts.db.transaction() as tx:
        tx.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 1")
    with pytest.raises(Exception, match="append-only"), env.parts.db.transaction() as tx:
        tx.execute("DELETE FROM audit WHERE seq = 1")


def test_an_edited_row_is_detected(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    _activity(env)
    _unprotect(env)
    with env.parts.db.transaction() as tx:
        tx.execute("UPDATE audit SET actor_user = 'mallory' WHERE seq = 3")
    report = _report(env)
    assert report.ok is False
    assert report.first_bad_seq == 3
    assert _cli(env) == 1
    assert "BROKEN at entry 3" in capsys.readouterr().out


def test_a_deleted_row_is_detected(env: Env) -> None:
    _activity(env)
    _unprotect(env)
    with env.parts.db.transaction() as tx:
        tx.execute("DELETE FROM audit WHERE seq = 4")
    assert _cli(env) == 1


def test_a_truncated_tail_is_detected(env: Env) -> None:
    _activity(env)
    _unprotect(env)
    with env.parts.db.transaction() as tx:
        top = tx.one("SELECT MAX(seq) AS m FROM audit")
        assert top is not None
        tx.execute("DELETE FROM audit WHERE seq = ?", (top["m"],))
    assert _cli(env) == 1


def test_a_resigned_forgery_is_detected(env: Env) -> None:
    # Rewriting a row and its hash still fails: the attacker cannot sign as the service.
    import hashlib

    _activity(env)
    _unprotect(env)
    with env.parts.db.transaction() as tx:
        tx.execute(
            "UPDATE audit SET entry_hash = ? WHERE seq = 2", (hashlib.sha256(b"forged").digest(),)
        )
    assert _cli(env) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_auditors_read_entries(make_env: object, database_url: str) -> None:
    assert callable(make_env)
    env = make_env(database_url, auditors=("alice",))
    try:
        _activity(env)
        with env.client("alice") as alice, env.client("bob") as bob:
            alice.initialize()
            bob.initialize()
            entries = alice._run(alice.client._call("GET", "/v1/audit", query="after=0&limit=5"))
            assert len(entries["entries"]) == 5
            from sealroom.sdk import ServiceRefusedError

            with pytest.raises(ServiceRefusedError, match="forbidden"):
                bob._run(bob.client._call("GET", "/v1/audit"))
    finally:
        env.close()
