"""A schedule's lease: which run may record now (a token and an expiry in the schedule's row).

A run *takes* the lease with a conditional UPDATE (only where no live lease exists), *fences*
its recording transaction with it (first statement: still ours? renew and row-lock it), and
*releases* it at the end. A crashed run's lease simply runs out after ``LEASE_S``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from lstmq.db.schema import Schedule, utcnow
from lstmq.errors import LeaseLost

LEASE_S = 300  # a crashed run blocks its schedule this long; live runs are bounded by MAX_RUN_LINES


def take(session: Session, schedule_id: int, token: str, now: datetime, beat: bool) -> bool:
    """Hold the lease with ``token`` if it is free (and, for beat, the schedule not paused)."""
    free = [Schedule.id == schedule_id, or_(Schedule.lease_until.is_(None), Schedule.lease_until < now)]
    if beat:
        free.append(Schedule.paused.is_(False))
    stmt = update(Schedule).where(*free).values(lease_token=token, lease_until=now + timedelta(seconds=LEASE_S))
    return session.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1


def fence(session: Session, schedule_id: int, token: str) -> None:
    """First statement of the recording transaction: still ours? (and row-lock it till commit)."""
    renewed = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.lease_token == token)
        .values(lease_until=utcnow() + timedelta(seconds=LEASE_S))
    ).rowcount
    if renewed != 1:
        raise LeaseLost(f"schedule {schedule_id}: lease lost to another run; nothing recorded")


def release(session: Session, schedule_id: int, token: str) -> None:
    """Give the lease up, if it is still ours (an expired one may have been taken since)."""
    session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.lease_token == token)
        .values(lease_token=None, lease_until=None)
    )
