"""The session's PostgreSQL database: emptied for a test that needs to start from nothing, or
closed to connections for an outage drill."""

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


def set_connections(pg_url: str, allowed: bool) -> None:
    """Open or close the database at ``pg_url`` to new connections, cutting the existing ones."""
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
    admin.dispose()
