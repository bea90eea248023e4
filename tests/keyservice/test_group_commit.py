"""Group commit: concurrent writes share transactions, each in its own savepoint, and a
request returns only once its own write is committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sealroom.keyservice.context import GroupCommit
from sealroom.keyservice.storage import ConflictError, Database, Tx, open_database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.close()


def _insert(nonce: bytes) -> object:
    def work(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO nonces (device_id, nonce, expires_at) VALUES (?, ?, ?)",
            ("dev", nonce, 1),
        )

    return work


def test_concurrent_writes_share_commits_and_a_failure_spoils_no_other(db: Database) -> None:
    batches = GroupCommit(db)
    transactions: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(24)

    def one(i: int) -> None:
        start.wait()
        nonce = b"dup" if i % 8 == 0 else f"n{i}".encode()  # three requests share a nonce
        try:
            transactions.append(batches.submit(_insert(nonce)))  # type: ignore[arg-type]
        except ConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 2  # the second and third use of the same nonce, refused alone
    assert len(transactions) == 22
    with db.read_transaction() as tx:
        row = tx.one("SELECT COUNT(*) AS n FROM nonces")
    assert row is not None
    assert int(row["n"]) == 22  # every write that returned is there
    assert len({id(t) for t in transactions}) < 22  # and they shared commits


def test_a_failed_commit_fails_every_write_in_it(db: Database) -> None:
    batches = GroupCommit(db)

    def boom(tx: Tx) -> None:
        raise KeyboardInterrupt  # not an Exception: escapes the savepoint, fails the commit

    with pytest.raises(KeyboardInterrupt):
        batches.submit(boom)
    batches.submit(_insert(b"after"))  # type: ignore[arg-type]
    with db.read_transaction() as tx:
        row = tx.one("SELECT COUNT(*) AS n FROM nonces")
    assert row is not None
    assert int(row["n"]) == 1
