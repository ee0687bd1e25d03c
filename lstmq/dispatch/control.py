"""What people change about dispatch: a job's priority, an owner's weight. Each change takes
effect at the next batch boundary (running batches are never stopped)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lstmq.db.dialects import upsert
from lstmq.db.queries import JOB_FINISHED, job_status
from lstmq.db.schema import JOB_CANCELLED, PRIORITIES, Job, Owner
from lstmq.dispatch.wake import notify
from lstmq.errors import InputError, UserError

MAX_WEIGHT = 1000


def check_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise InputError(f"unknown priority {priority!r} (expected {', '.join(PRIORITIES)})")
    return priority


def check_weight(weight: int) -> int:
    if not 1 <= weight <= MAX_WEIGHT:
        raise InputError(f"a weight must be between 1 and {MAX_WEIGHT}, got {weight}")
    return weight


def set_priority(session: Session, job_id: str, priority: str) -> None:
    """Change a waiting or running job's priority; a finished or cancelled one is refused."""
    check_priority(priority)
    state = job_status(session, job_id).state
    if state in (JOB_FINISHED, JOB_CANCELLED):
        raise UserError(f"job {job_id} is {state}; its priority no longer matters")
    session.get(Job, job_id).priority = priority
    notify(session)


def set_weight(session: Session, owner: str, weight: int) -> None:
    """An owner's share within its priority, against the others' (default 1)."""
    if not owner or len(owner) > 64:
        raise InputError("an owner name has 1 to 64 characters")
    upsert(session, Owner, [{"name": owner, "weight": check_weight(weight)}], ("name",))
    notify(session)


def weights(session: Session) -> dict[str, int]:
    """Owners whose weight was set (every other owner has ``DEFAULT_WEIGHT``)."""
    return dict(session.execute(select(Owner.name, Owner.weight).order_by(Owner.name)).all())
