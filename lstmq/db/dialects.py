"""The one dialect-specific construct the project needs: ``INSERT ... ON CONFLICT``.

PostgreSQL and SQLite spell it the same way, but SQLAlchemy exposes it per dialect.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session, table):
    """The INSERT construct of the session's dialect (both have ``on_conflict_*``)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ON CONFLICT is not implemented for the {name} dialect")
