"""Engines, sessions and the start-up checks (reachable? schema current?)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from lstmq.db.migrate import head_revision
from lstmq.errors import ConfigError, SchemaOutdated, ServiceUnavailable
from lstmq.settings import Settings, get_settings, mask_url

SQLITE_BUSY_TIMEOUT_MS = 30_000  # a worker and a producer share the file in the embedded setup
CONNECT_TIMEOUT_S = 5


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"LSTMQ_DATABASE_URL={mask_url(url)} is not usable: {exc}") from None


def _json_dumps(value) -> bytes:
    """JSON parameters as psycopg sends them (bytes), with orjson: ~15x faster than ``json`` on a
    batch's result rows (1.4 ms -> 0.09 ms for 256). Keys that are not strings become strings,
    as ``json.dumps`` makes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).database)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error. Callers own the boundary."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session


def ping(engine: Engine) -> None:
    """Raise ServiceUnavailable with one line when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise ServiceUnavailable(
            f"database {mask_url(engine.url.render_as_string(hide_password=False))} unreachable: {reason}"
        ) from None


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def require_current_schema(engine: Engine) -> None:
    """Workers and producers refuse a database whose schema is not at this code's head."""
    ping(engine)
    have, want = current_revision(engine), head_revision()
    if have != want:
        state = "empty" if have is None else f"at revision {have}"
        raise SchemaOutdated(f"database schema is {state}, this lstmq needs {want}: run `lstmq db upgrade`")


def ready_engine(settings: Settings | None = None) -> Engine:
    """The engine after start-up checks: reachable and at the current schema."""
    engine = get_engine(settings)
    require_current_schema(engine)
    return engine
