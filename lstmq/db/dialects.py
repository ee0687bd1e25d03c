"""The one dialect-specific construct the project needs: ``INSERT ... ON CONFLICT``.

PostgreSQL and SQLite spell it the same way, but SQLAlchemy exposes it per dialect; many rows at
once go set-based on PostgreSQL (``upsert_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import JSON, Connection, DateTime, Engine, Table, Text, TextClause, any_, bindparam, cast, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lstmq.db.schema import utcnow

STAMPS = ("created_at", "updated_at")  # set by upsert to the statement's time when a table has them


def bind_of(db: Session | Connection) -> Engine | Connection:
    """What runs a Session's or a Connection's statements: where its dialect is (the dispatcher
    makes batches on a bare Connection, everything else in a Session)."""
    return db.get_bind() if isinstance(db, Session) else db


def dialect_insert(session: Session | Connection, table):
    """The INSERT construct of the session's dialect (both have ``on_conflict_*``)."""
    name = bind_of(session).dialect.name
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


def upsert_rows(
    session: Session, table, rows: list[dict], key_columns: Sequence[str], update_columns: Sequence[str]
) -> None:
    """``upsert`` of many rows, set-based on PostgreSQL: the rows travel as one JSON array that
    ``json_to_recordset`` unpacks into one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` (one
    statement and one JSON encoding instead of a statement and JSON values per row: about 2x
    faster for 256 result rows). The rows' values must be JSON's (str, int, float, bool, None,
    lists, dicts). Elsewhere (SQLite: no round trips to save) it is ``upsert``."""
    if not rows or bind_of(session).dialect.name != "postgresql":
        return upsert(session, table, rows, key_columns, update_columns)
    table = getattr(table, "__table__", table)
    stmt = recordset_upsert(table, tuple(rows[0]), tuple(key_columns), tuple(update_columns))
    # Rows in key order, as upsert's: concurrent copies of a batch lock rows in the same order.
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in key_columns))
    session.execute(stmt, {"rows": ordered, "now": utcnow()})


def insert_new_rows(session: Session | Connection, table: Table, rows: list[dict], key_columns: Sequence[str]) -> list:
    """Insert ``rows`` (JSON values; ``created_at``/``updated_at`` are set to now) that do not
    exist yet, by ``key_columns``; returns the first key column of those inserted. On
    PostgreSQL one ``json_to_recordset`` statement, as ``upsert_rows``."""
    if not rows:
        return []
    now = utcnow()
    if bind_of(session).dialect.name != "postgresql":
        stamps = {name: now for name in STAMPS if name in table.c}
        stmt = dialect_insert(session, table).on_conflict_do_nothing().returning(table.c[key_columns[0]])
        return list(session.scalars(stmt, [{**row, **stamps} for row in rows]))
    stmt = recordset_upsert(table, tuple(rows[0]), tuple(key_columns), None)
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in key_columns))
    return list(session.scalars(stmt, {"rows": ordered, "now": now}))


@lru_cache(maxsize=32)
def recordset_upsert(table: Table, names: tuple, keys: tuple, changed: tuple | None) -> TextClause:
    """``upsert_rows``' statement for PostgreSQL, built once: SQLAlchemy cannot cache the compiled
    form of a ``json_to_recordset`` construct, and compiling it again cost ~1.5 ms per batch.
    ``changed`` None: rows that exist are left alone, and the inserted ones' first key returned."""
    dialect, stamps = postgresql.dialect(), [name for name in STAMPS if name in table.c]
    quote = dialect.identifier_preparer.quote
    typed = ", ".join(f"{quote(name)} {table.c[name].type.compile(dialect=dialect)}" for name in names)
    if changed is None:
        on_conflict = f" DO NOTHING RETURNING {quote(keys[0])}"
    else:
        changed = (*changed, *(["updated_at"] if "updated_at" in stamps else []))
        on_conflict = f" DO UPDATE SET {', '.join(f'{quote(c)} = excluded.{quote(c)}' for c in changed)}"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in (*names, *stamps))})"
        f" SELECT {', '.join([*(quote(n) for n in names), *(':now' for _ in stamps)])}"
        f" FROM json_to_recordset(:rows) AS given({typed})"
        f" ON CONFLICT ({', '.join(quote(k) for k in keys)})" + on_conflict
    )
    return text(sql).bindparams(bindparam("rows", type_=JSON), bindparam("now", type_=DateTime(timezone=True)))


def any_of(dialect: str, column, name: str):
    """``column`` is one of the values bound as ``name`` (pass them through ``values_for``), for
    statements built once per dialect: building a statement at each call cost more of a
    worker's CPU than running it. PostgreSQL: ``= ANY(CAST(:name AS type[]))``; elsewhere an
    expanding ``IN``."""
    if dialect != "postgresql":
        return column.in_(bindparam(name, expanding=True))
    return _any_array(column, bindparam(name, type_=Text))


def values_for(dialect: str, values: Sequence[int] | Sequence[str]) -> str | list:
    """What ``any_of``'s parameter takes: an array literal on PostgreSQL, the list elsewhere."""
    return array_literal(values) if dialect == "postgresql" else list(values)


def among(bind, column, values: Sequence[int] | Sequence[str]):
    """``column IN (values)`` in a statement built at the call; on PostgreSQL as ``any_of``, the
    values bound as one array literal."""
    if bind.dialect.name != "postgresql":
        return column.in_(values)
    return _any_array(column, bindparam(None, array_literal(values), type_=Text))


def _any_array(column, literal):
    """``column = ANY(CAST(literal AS type[]))``: one parameter instead of one per value (a
    256-id lookup: ~1 ms less to render, send and plan)."""
    return column == any_(cast(literal, postgresql.ARRAY(column.type)))


def array_literal(values: Sequence[int] | Sequence[str]) -> str:
    """PostgreSQL's text form of a one-dimensional array: ``{1,2,3}`` or ``{"a","b\\"c"}``.
    Joined in one pass: psycopg dumps a list parameter element by element in Python (256 ids:
    0.4 ms of CPU per statement, their literal 0.07 ms)."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"
