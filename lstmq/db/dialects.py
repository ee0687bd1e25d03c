"""The one dialect-specific construct the project needs: ``INSERT ... ON CONFLICT``.

PostgreSQL and SQLite spell it the same way, but SQLAlchemy exposes it per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lstmq.db.schema import utcnow

STAMPS = ("created_at", "updated_at")  # set by upsert to the statement's time when a table has them


def dialect_insert(session: Session, table):
    """The INSERT construct of the session's dialect (both have ``on_conflict_*``)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ON CONFLICT is not implemented for the {name} dialect")


def upsert(
    session: Session, table, rows: list[dict], key_columns: Sequence[str], update_columns: Sequence[str] | None = None
) -> None:
    """``INSERT ... ON CONFLICT (key_columns) DO UPDATE`` of ``rows`` in the caller's transaction.

    ``table`` is a Table or a mapped class; ``update_columns`` are what a conflict overwrites
    (default: every column of the rows but the keys). ``created_at`` and ``updated_at``, where
    the table has them, are set to now, and a conflict refreshes ``updated_at`` only."""
    if not rows:
        return
    table = getattr(table, "__table__", table)  # Core: skips the ORM bulk-insert layer
    now = utcnow()
    stamps = {name: now for name in STAMPS if name in table.c}
    if update_columns is None:
        update_columns = [name for name in rows[0] if name not in key_columns and name not in STAMPS]
    stmt = dialect_insert(session, table)
    changed = [*update_columns, *(["updated_at"] if "updated_at" in stamps else [])]
    stmt = stmt.on_conflict_do_update(index_elements=list(key_columns), set_={c: stmt.excluded[c] for c in changed})
    # executemany: one cached statement, sent as multi-row VALUES pages by SQLAlchemy. Rows in key
    # order: concurrent copies of a batch lock rows in the same order (no deadlock).
    params = sorted(({**row, **stamps} for row in rows), key=lambda row: tuple(row[k] for k in key_columns))
    session.execute(stmt, params)
