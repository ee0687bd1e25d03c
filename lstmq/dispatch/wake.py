"""Waking the dispatcher: a job to send, or a slot freed, announced at a transaction's commit."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "lstmq_dispatch"  # PostgreSQL LISTEN/NOTIFY channel


def notify(session: Session) -> None:
    """Wake the dispatcher when this transaction commits (PostgreSQL NOTIFY; with SQLite the
    dispatcher runs in the worker, which wakes it in process, and looks every second besides)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
