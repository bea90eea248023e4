"""Group commit: concurrent writes share transactions, each in its own savepoint, and a
request returns only once its own write is committed (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

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


def _until(condition: Callable[[], bool]) -> None:
    """Wait (at most 30 s) for another thread to get somewhere."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0.005)


def test_concurrent_writes_share_commits_and_a_failure_spoils_no_other(db: Database) -> None:
    """24 writes arrive while a commit is under way (held until they all wait, so that the
    test does not depend on how the threads are scheduled): they go in one transaction,
    and the two that reuse a nonce are refused alone."""
    batches = GroupCommit(db)
    transactions: list[object] = []
    errors: list[BaseException] = []
    gate = threading.Event()
    first = threading.Thread(target=batches.submit, args=(lambda tx: gate.wait(30),))
    first.start()
    _until(lambda: batches._flushing)

    def one(i: int) -> None:
        nonce = b"dup" if i % 8 == 0 else f"n{i}".encode()  # three requests share a nonce
        try:
            transactions.append(batches.submit(_insert(nonce)))  # type: ignore[arg-type]
        except ConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    _until(lambda: len(batches._waiting) == 24)
    gate.set()
    for t in [first, *threads]:
        t.join()
    assert len(errors) == 2  # the second and third use of the same nonce, refused alone
    assert len(transactions) == 22
    with db.read_transaction() as tx:
        row = tx.one("SELECT COUNT(*) AS n FROM nonces")
    assert row is not None
    assert int(row["n"]) == 22  # every write that returned is there
    assert len({id(t) for t in transactions}) == 1  # and they shared one commit


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
