"""Queue what a run recorded: every ``submitting`` job of a schedule, through ``send_pending``.

Documents are committed before their batches are sent (the database is the source of truth),
so this also completes a job whose run died between recording and queueing.
"""

from __future__ import annotations

from celery import Celery
from sqlalchemy import Engine, select

from lstmq.batching import batch_size_for
from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_SUBMITTING, Job
from lstmq.sending import send_pending
from lstmq.settings import get_settings


def publish_pending(engine: Engine, app: Celery, schedule_id: int) -> list[str]:
    """Send the pending documents of the schedule's unqueued jobs; returns their ids."""
    with session_scope(engine) as session:
        jobs = session.scalars(
            select(Job).where(Job.schedule_id == schedule_id, Job.state == JOB_SUBMITTING).order_by(Job.created_at)
        ).all()
    size = batch_size_for(None, get_settings().batch_size)
    for job in jobs:
        send_pending(engine, app, job, size)
    return [job.id for job in jobs]
