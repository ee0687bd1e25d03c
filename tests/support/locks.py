"""Holding the documents table so a worker cannot record its batch: a test can then catch the
worker mid-batch, its message taken but unacknowledged (acks are late: after the write)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


@contextmanager
def documents_locked(engine: Engine) -> Iterator[None]:
    """Reads go on; every write to ``documents`` waits until the block ends (SQLite: up to its busy timeout)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # WAL: readers are never blocked, writers are
        else:
            conn.execute(text("LOCK TABLE documents IN EXCLUSIVE MODE"))  # conflicts with writes only
        try:
            yield
        finally:
            conn.rollback()


def lock_waiters(engine: Engine) -> set[int]:
    """PostgreSQL sessions of this database waiting for a lock, by backend pid: while
    ``documents_locked`` holds, each is a worker inside its task, stopped at its write."""
    query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    with engine.connect() as conn:
        return set(conn.scalars(query))
