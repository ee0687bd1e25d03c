"""Queue what a run recorded: every ``submitting`` job of a schedule is marked queued and the
dispatcher woken (``lstmq.sending.mark_recorded``).

Documents are committed before they are queued (the database is the source of truth), so this
also completes a job whose run died between recording and queueing.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_SUBMITTING, Job
from lstmq.sending import mark_recorded


def publish_pending(engine: Engine, schedule_id: int) -> list[str]:
    """Queue the schedule's recorded, unqueued jobs; returns their ids."""
    with session_scope(engine) as session:
        ids = session.scalars(
            select(Job.id).where(Job.schedule_id == schedule_id, Job.state == JOB_SUBMITTING).order_by(Job.created_at)
        ).all()
    for job_id in ids:
        mark_recorded(engine, job_id)
    return list(ids)
