"""A database insider cuts the audit log and rewinds its head (or wipes it): the chain still
links from genesis to the head, so it verifies. Only a signed head kept outside the
database shows that entries were cut: ``sealroom audit verify --expect-head``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sealroom.cli import main
from sealroom.keyservice.audit import SignedHead
from sealroom.keyservice.storage import Database
from sealroom.sdk import SyncClient
from tests.databases import BACKENDS
from tests.security.live_keyservice import LiveKeyService, drop_audit_guard, live_keyservice


def _verify(ks: LiveKeyService, *options: str) -> int:
    settings = ks.parts.settings
    return main(
        [
            "audit",
            "verify",
            "--database-url",
            settings.database_url,
            "--secrets-file",
            str(settings.secrets_file),
            *options,
        ]
    )


def _activity(client: SyncClient, n: int) -> None:
    for _ in range(n):
        client.encrypt_document(f"doc-{uuid.uuid4().hex}", b"x", users=["alice"])


def _head_seq(db: Database) -> int:
    with db.transaction() as tx:
        head = tx.one("SELECT seq FROM audit_head WHERE id = 1")
    assert head is not None
    return int(head["seq"])


def _rewind(db: Database, to_seq: int) -> None:
    """Cut every entry after ``to_seq`` and point the head at it, as an insider can."""
    drop_audit_guard(db)
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit WHERE seq > ?", (to_seq,))
        if to_seq == 0:
            tx.execute("UPDATE audit_head SET seq = 0, entry_hash = ? WHERE id = 1", (bytes(32),))
        else:
            tx.execute(
                "UPDATE audit_head SET seq = ?, entry_hash = (SELECT entry_hash FROM audit "
                "WHERE seq = ?) WHERE id = 1",
                (to_seq, to_seq),
            )


@pytest.mark.parametrize("backend", BACKENDS)
def test_database_insider_rewinding_the_audit_head_is_detected(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_keyservice(tmp_path, backend) as ks, ks.client("alice") as alice:
        alice.initialize()
        _activity(alice, 3)
        kept = tmp_path / "kept-head.txt"  # the operator keeps the signed head outside
        assert _verify(ks, "--save-head", str(kept)) == 0
        head = SignedHead.from_text(kept.read_text())
        assert head.seq == _head_seq(ks.parts.db)
        assert head.to_text() in capsys.readouterr().out
        _activity(alice, 3)

        _rewind(ks.parts.db, head.seq - 2)  # cut the tail, back past the kept head
        assert _verify(ks) == 0  # without a kept head the rewound log looks whole
        capsys.readouterr()
        assert _verify(ks, "--expect-head", str(kept)) == 1
        out = capsys.readouterr().out
        assert f"BROKEN at entry {head.seq - 1}" in out
        assert "cut" in out
        # The key service, asked with the kept head, refuses to sign the rewound one.
        report = alice.verify_audit(expect_head=head.to_text())
        assert report.ok is False
        assert report.head_signature is None

        # New entries carry the log past the kept position again: still caught.
        while _head_seq(ks.parts.db) <= head.seq:
            _activity(alice, 1)
        assert _verify(ks, "--expect-head", head.to_text()) == 1
        assert f"BROKEN at entry {head.seq}" in capsys.readouterr().out
        assert alice.verify_audit(expect_head=head.to_text()).ok is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_database_insider_wiping_the_audit_log_is_detected(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_keyservice(tmp_path, backend) as ks, ks.client("alice") as alice:
        alice.initialize()
        _activity(alice, 2)
        report = alice.verify_audit()  # the service hands out its signed head too
        assert report.ok is True
        kept = report.head_token
        _rewind(ks.parts.db, 0)
        assert _verify(ks) == 0
        assert "0 entries" in capsys.readouterr().out
        assert _verify(ks, "--expect-head", kept) == 1
        assert "BROKEN" in capsys.readouterr().out
        assert alice.verify_audit(expect_head=kept).ok is False


def test_a_log_that_extends_the_kept_head_verifies(tmp_path: Path) -> None:
    with live_keyservice(tmp_path) as ks, ks.client("alice") as alice:
        alice.initialize()
        kept = tmp_path / "kept-head.txt"
        assert _verify(ks, "--save-head", str(kept)) == 0
        first = kept.read_text()
        _activity(alice, 2)
        assert _verify(ks, "--expect-head", str(kept), "--save-head", str(kept)) == 0
        assert SignedHead.from_text(kept.read_text()).seq > SignedHead.from_text(first).seq
        assert alice.verify_audit(expect_head=first).ok is True


def test_a_kept_head_that_is_forged_or_garbled_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_keyservice(tmp_path) as ks, ks.client("alice") as alice:
        alice.initialize()
        good = SignedHead.from_text(alice.verify_audit().head_token)
        forged = SignedHead(good.seq, good.entry_hash, bytes(64)).to_text()
        for bad in (forged, good.to_text()[:-3], "sealroom-audit-head:v1:-1:AA:AA"):
            assert _verify(ks, "--expect-head", bad) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1
            assert "kept head" in err
        assert _verify(ks, "--expect-head", str(tmp_path / "no-such-head")) == 2
        assert "no such file" in capsys.readouterr().err


def test_mistyped_secrets_file_fails_without_creating_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_keyservice(tmp_path) as ks, ks.client("alice") as alice:
        alice.initialize()
        url = ks.parts.settings.database_url
        typo = tmp_path / "keyservice-secret.json"
        assert main(["audit", "verify", "--database-url", url, "--secrets-file", str(typo)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert str(typo) in err
        assert not typo.exists()
        # A mistyped SQLite path does not verify a fresh, empty database either.
        missing = tmp_path / "keyservce.db"
        secrets = str(ks.parts.settings.secrets_file)
        code = main(
            ["audit", "verify", "--database-url", f"sqlite:///{missing}", "--secrets-file", secrets]
        )
        assert code == 2
        assert str(missing) in capsys.readouterr().err
        assert not missing.exists()
