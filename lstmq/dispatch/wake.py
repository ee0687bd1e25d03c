"""Waking the dispatcher: a job to send, or a slot freed, announced at a transaction's commit."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from lstmq.db.dialects import bind_of

CHANNEL = "lstmq_dispatch"  # PostgreSQL LISTEN/NOTIFY channel


def notify(session: Session | Connection) -> None:
    """Wake the dispatcher when this transaction commits (PostgreSQL NOTIFY; with SQLite the
    dispatcher runs in the worker, which wakes it in process, and looks every second besides)."""
    if bind_of(session).dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
