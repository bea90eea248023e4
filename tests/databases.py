"""Fresh databases for backend tests: a SQLite file in the test's directory, or a PostgreSQL
schema of its own on 127.0.0.1:5432, dropped afterwards. Without a PostgreSQL server the
PostgreSQL cases are skipped, saying why."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_DSN = os.environ.get("SEALROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgres")


@functools.cache
def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be tested against, or None if it can."""
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: no server to test against
        return f"PostgreSQL not reachable at {PG_DSN}: {type(exc).__name__}"


@contextlib.contextmanager
def fresh_database_url(backend: str, tmp: Path) -> Iterator[str]:
    """A database URL no other test uses; a PostgreSQL schema is dropped at the end."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'keyservice-{uuid.uuid4().hex[:8]}.db'}"
        return
    if backend != "postgres":
        raise ValueError(backend)
    reason = pg_unavailable()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"sr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
