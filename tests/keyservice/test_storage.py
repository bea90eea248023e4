"""Storage backends: migrations, transactions and conflicts behave the same on both."""

from __future__ import annotations

import threading

import pytest

from sealroom.keyservice.storage import MIGRATIONS, ConflictError, open_database


def _assert_migrated_once(database_url: str) -> None:
    """Open the database and check every migration is recorded, each once."""
    db = open_database(database_url)
    try:
        with db.transaction() as tx:
            versions = [r["version"] for r in tx.all("SELECT version FROM schema_migrations")]
        assert versions == [v for v, _ in MIGRATIONS]
    finally:
        db.close()


def test_migrations_are_recorded_once_and_rerun_safely(database_url: str) -> None:
    db = open_database(database_url)
    db.close()
    _assert_migrated_once(database_url)  # a second start applies nothing twice


def test_workers_starting_together_on_a_fresh_database_all_migrate_it(database_url: str) -> None:
    # Several workers or replicas open an empty database at once (CI's topology test did,
    # and one of them died on PostgreSQL's catalogue race in CREATE TABLE IF NOT EXISTS).
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            open_database(database_url).close()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    _assert_migrated_once(database_url)


def test_a_failed_transaction_writes_nothing(database_url: str) -> None:
    db = open_database(database_url)
    try:

        def write_then_fail() -> None:
            with db.transaction() as tx:
                tx.execute(
                    "INSERT INTO escrow_halves (user_id, sealed_half, created_at) "
                    "VALUES ('u1', ?, 0)",
                    (b"x",),
                )
                raise RuntimeError("midway")

        with pytest.raises(RuntimeError, match="midway"):
            write_then_fail()
        with db.transaction() as tx:
            assert tx.one("SELECT user_id FROM escrow_halves WHERE user_id = 'u1'") is None
    finally:
        db.close()


def test_duplicates_raise_conflict(database_url: str) -> None:
    db = open_database(database_url)
    try:
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO escrow_halves (user_id, sealed_half, created_at) VALUES ('u', ?, 0)",
                (b"x",),
            )
        with pytest.raises(ConflictError), db.transaction() as tx:
            tx.execute(
                "INSERT INTO escrow_halves (user_id, sealed_half, created_at) VALUES ('u', ?, 0)",
                (b"y",),
            )
        with db.transaction() as tx:
            row = tx.one("SELECT sealed_half FROM escrow_halves WHERE user_id = 'u'")
        assert row is not None
        assert bytes(row["sealed_half"]) == b"x"
    finally:
        db.close()


def test_unknown_database_url() -> None:
    with pytest.raises(ValueError, match="sqlite"):
        open_database("mysql://nope")
