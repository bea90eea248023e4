"""Storage: one small interface, two real backends (SQLite with WAL, PostgreSQL).

Every change that touches several rows runs in one :meth:`Database.transaction`. SQL is
written once with ``?`` placeholders and ``{BLOB}`` for the binary type; each backend
translates. The schema is versioned: :data:`MIGRATIONS` lists each version's statements,
applied in order and recorded in ``schema_migrations``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from sealroom.errors import SealroomError

__all__ = [
    "MIGRATIONS",
    "ConflictError",
    "Database",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "StorageError",
    "StorageUnavailableError",
    "Tx",
    "latest_version",
    "open_database",
]

Row = dict[str, Any]


class StorageError(SealroomError):
    """The database failed in a way the caller cannot fix."""


class ConflictError(StorageError):
    """A uniqueness constraint refused the write."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached right now (down, restarting, out of connections)."""


class Tx(Protocol):
    """One open transaction."""

    dialect: str

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: str

    def transaction(self) -> Any:
        """A context manager yielding a :class:`Tx`; commits on success, rolls back on error."""
        ...

    def read_transaction(self) -> Any:
        """Like :meth:`transaction`, for reads only: it takes no write lock."""
        ...

    def schema_version(self, timeout: float = 2.0) -> int:
        """The newest migration applied; :class:`StorageUnavailableError` if the database
        cannot be reached within ``timeout`` seconds (for the readiness check)."""
        ...

    def close(self) -> None: ...


#: The schema version this code needs (readiness requires the database to be at it).
def latest_version() -> int:
    return MIGRATIONS[-1][0]


_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
]
_APPEND_ONLY_POSTGRES = [
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
]

_SCHEMA_V1: Final[list[str]] = [
    """CREATE TABLE users (
        id TEXT PRIMARY KEY,
        public_key {BLOB} NOT NULL,
        raw_public_key {BLOB} NOT NULL,
        signing_key {BLOB} NOT NULL,
        augmentation_secret {BLOB} NOT NULL,
        escrow_blob {BLOB} NOT NULL,
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE escrow_halves (
        user_id TEXT PRIMARY KEY,
        sealed_half {BLOB} NOT NULL,
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,
        signing_key {BLOB} NOT NULL UNIQUE,
        public_key {BLOB} NOT NULL,
        certificate {BLOB} NOT NULL,
        transform_key {BLOB},
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at BIGINT)""",
    "CREATE INDEX devices_by_user ON devices(user_id)",
    """CREATE TABLE sr_groups (
        id TEXT PRIMARY KEY,
        public_key {BLOB} NOT NULL,
        raw_public_key {BLOB} NOT NULL,
        augmentation_secret {BLOB} NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE group_admins (
        group_id TEXT NOT NULL REFERENCES sr_groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id),
        encrypted_group_key {BLOB} NOT NULL,
        PRIMARY KEY (group_id, user_id))""",
    """CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES sr_groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id),
        transform_key {BLOB} NOT NULL,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (group_id, user_id))""",
    "CREATE INDEX group_members_by_user ON group_members(user_id)",
    """CREATE TABLE group_preapproved (
        group_id TEXT NOT NULL REFERENCES sr_groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        PRIMARY KEY (group_id, user_id))""",
    """CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users(id),
        created_at BIGINT NOT NULL)""",
    """CREATE TABLE document_grants (
        document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        grantee_kind TEXT NOT NULL,
        grantee_id TEXT NOT NULL,
        edek {BLOB} NOT NULL,
        granted_by TEXT NOT NULL,
        granted_at BIGINT NOT NULL,
        PRIMARY KEY (document_id, grantee_kind, grantee_id))""",
    """CREATE TABLE nonces (
        device_id TEXT NOT NULL,
        nonce {BLOB} NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (device_id, nonce))""",
    """CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        actor_user TEXT,
        actor_device TEXT,
        action TEXT NOT NULL,
        object TEXT,
        outcome TEXT NOT NULL,
        prev_hash {BLOB} NOT NULL,
        entry_hash {BLOB} NOT NULL,
        signature {BLOB} NOT NULL)""",
    """CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY,
        seq BIGINT NOT NULL,
        entry_hash {BLOB} NOT NULL)""",
]

_SCHEMA_V2: Final[list[str]] = [
    # An admin device's signature over (group id, group public key), checked by clients.
    "ALTER TABLE sr_groups ADD COLUMN key_statement {BLOB}",
    "ALTER TABLE sr_groups ADD COLUMN key_statement_device TEXT",
    # Why a device stopped: 'rotated' (its history stays trusted) or 'revoked' (lost).
    "ALTER TABLE devices ADD COLUMN revoke_reason TEXT",
]

_SCHEMA_V3: Final[list[str]] = [
    # Forward-only groups (meetings): a member opens only values an admin registered after
    # the member was added. ``generation`` counts additions; a member's ``since`` is the
    # generation its addition made; a registered value keeps the generation it was made at.
    "ALTER TABLE sr_groups ADD COLUMN forward_only INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sr_groups ADD COLUMN generation BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE group_members ADD COLUMN since BIGINT NOT NULL DEFAULT 0",
    """CREATE TABLE group_values (
        group_id TEXT NOT NULL REFERENCES sr_groups(id) ON DELETE CASCADE,
        fingerprint {BLOB} NOT NULL,
        generation BIGINT NOT NULL,
        registered_by TEXT NOT NULL,
        PRIMARY KEY (group_id, fingerprint))""",
]

_SCHEMA_V4: Final[list[str]] = [
    # A forward-only group (a meeting) has one manager: only it changes the membership,
    # the admins and the bans, and registers values; an admin takes management by claiming
    # it (audited). A ban outlives every change of manager until the manager lifts it.
    "ALTER TABLE sr_groups ADD COLUMN manager TEXT",
    "UPDATE sr_groups SET manager = created_by WHERE forward_only = 1",
    """CREATE TABLE group_bans (
        group_id TEXT NOT NULL REFERENCES sr_groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        banned_by TEXT NOT NULL,
        banned_at BIGINT NOT NULL,
        PRIMARY KEY (group_id, user_id))""",
]

#: Versioned migrations: (version, statements). Never edit a released version; append.
MIGRATIONS: Final[list[tuple[int, list[str]]]] = [
    (1, _SCHEMA_V1),
    (2, _SCHEMA_V2),
    (3, _SCHEMA_V3),
    (4, _SCHEMA_V4),
]


def _dialect_sql(sql: str, dialect: str) -> str:
    return sql.replace("{BLOB}", "BLOB" if dialect == "sqlite" else "BYTEA")


# Workers and replicas that start together migrate one at a time: PostgreSQL's
# CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (a unique violation in its
# catalogue), so every migration transaction first takes this transaction-scoped lock.
_MIGRATION_LOCK = 0x5EA1_2001


def _migrate(db: Database) -> None:
    def serialize(tx: Tx) -> None:
        if db.dialect == "postgres":
            tx.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    with db.transaction() as tx:
        serialize(tx)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
        )
    for version, statements in MIGRATIONS:
        with db.transaction() as tx:
            serialize(tx)
            if tx.one("SELECT version FROM schema_migrations WHERE version = ?", (version,)):
                continue
            for stmt in statements:
                tx.execute(_dialect_sql(stmt, db.dialect))
            if version == 1:
                extra = _APPEND_ONLY_SQLITE if db.dialect == "sqlite" else _APPEND_ONLY_POSTGRES
                for stmt in extra:
                    tx.execute(stmt)
                tx.execute(
                    "INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, ?)", (bytes(32),)
                )
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, int(time.time())),
            )


# --- SQLite ----------------------------------------------------------------------------------


class _SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        try:
            return self._conn.execute(sql, tuple(params)).rowcount
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise ConflictError(str(exc)) from None
            raise StorageError(str(exc)) from None

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        row = self._conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]


class SqliteDatabase:
    """SQLite in one file with WAL. Safe for several threads and several processes."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._wal()
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        _migrate(self)

    def _wal(self) -> None:
        """Switch the file to WAL. Several processes opening a new file at once can find it
        locked here without SQLite's busy handler waiting for them, so ask again for up
        to 30 s."""
        deadline = time.monotonic() + 30.0
        delay = 0.01
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._begin("BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def read_transaction(self) -> Iterator[Tx]:
        with self._begin("BEGIN DEFERRED") as tx:
            yield tx

    @contextmanager
    def _begin(self, statement: str) -> Iterator[Tx]:
        with self._lock:
            self._conn.execute(statement)
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def schema_version(self, timeout: float = 2.0) -> int:
        with self.read_transaction() as tx:
            row = tx.one("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row["v"]) if row and row["v"] is not None else 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- PostgreSQL ------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


class _PostgresTx:
    dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _run(self, sql: str, params: Sequence[object]) -> Any:
        try:
            return self._conn.execute(_PLACEHOLDER.sub("%s", sql), tuple(params))
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(str(exc).splitlines()[0]) from None
        except psycopg.errors.IntegrityError as exc:
            raise StorageError(str(exc).splitlines()[0]) from None

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return int(self._run(sql, params).rowcount)

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        row = self._run(sql, params).fetchone()
        return None if row is None else _pg_row(row)

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return [_pg_row(r) for r in self._run(sql, params).fetchall()]


def _pg_row(row: dict[str, Any]) -> Row:
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}


class PostgresDatabase:
    """PostgreSQL through a psycopg 3 connection pool, optionally in its own schema."""

    dialect = "postgres"

    def __init__(self, dsn: str, *, schema: str | None = None, max_size: int = 10) -> None:
        kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
        if schema is not None:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
                raise ValueError("schema name must be a plain lower-case identifier")
            kwargs["options"] = f"-c search_path={schema}"
        # check: a connection broken by a server restart is replaced when taken, not used.
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs=kwargs,
            open=True,
            check=ConnectionPool.check_connection,
            # After a server outage, give up a backing-off attempt after 5 s: the next
            # request starts a fresh one, so the pool is back within seconds of the server.
            reconnect_timeout=5.0,
        )
        _migrate(self)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        # A request waits at most 5 s for a connection (all busy, or the server away), then
        # fails with StorageUnavailableError (503 unavailable), rather than hanging.
        with self._connection(5.0) as conn, conn.transaction():
            yield _PostgresTx(conn)

    read_transaction = transaction

    @contextmanager
    def _connection(self, timeout: float) -> Iterator[Any]:
        """A pooled connection; the server being away is :class:`StorageUnavailableError`."""
        try:
            with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StorageUnavailableError(type(exc).__name__) from None

    def schema_version(self, timeout: float = 2.0) -> int:
        with self._connection(timeout) as conn:
            try:
                row = conn.execute("SELECT MAX(version) AS v FROM schema_migrations").fetchone()
            except psycopg.OperationalError as exc:
                raise StorageUnavailableError(type(exc).__name__) from None
        return int(row["v"]) if row and row["v"] is not None else 0

    def close(self) -> None:
        self._pool.close()


def open_database(url: str) -> Database:
    """``sqlite:///path/to/file.db`` or ``postgresql://…`` (``?schema=name`` optional)."""
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        base, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        schema = params.pop("schema", None)
        rest = "&".join(f"{k}={v}" for k, v in params.items())
        return PostgresDatabase(base + ("?" + rest if rest else ""), schema=schema)
    raise ValueError("database URL must start with sqlite:/// or postgresql://")
