"""The session's PostgreSQL database, emptied for a test that needs to start from nothing."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def empty_postgres(url: str) -> str:
    """Drop every table (and the migrations' version row) of the database at ``url``; returns ``url``."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url
