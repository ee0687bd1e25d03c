"""The reconciler: finds documents that no message will ever bring to a worker, and sends them again.

The database knows every document without a result; the broker may have lost its message (Redis
restarted without persistence, a worker killed mid-batch, a retry that could not be published).
A job is *stalled* when it has pending documents, has made no progress for
``LSTMQ_STALL_AFTER_S``, no live worker holds one of its batches, its queue is empty (nothing is
on its way: a job waiting behind others is not stalled), and a live worker consumes that queue
(or a re-send would wait for nobody). Each worker looks every heartbeat;
one claims the job with a conditional UPDATE (at most one re-send per job per interval, whichever
worker gets there), logs it and counts it in ``jobs.recoveries`` (re-sends since the job last
made progress). Re-sending is harmless: a
document already done is skipped, results are upserts.

A job still being recorded whose submit gave no sign of life for ``LSTMQ_STALL_AFTER_S``
(``lstmq.producer.liveness``: the submit was killed) is cancelled, with the reason in its options:
its input was only partly recorded, so finishing it would pass off part of a job as the whole.

A job re-sent ``MAX_FRUITLESS_RECOVERIES`` times without any progress in between is a poison
(its batches kill their worker, as the redelivery cap counts for Redis redeliveries): its pending
documents are failed with the reason, and ``lstmq requeue JOB --failed`` retries them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from celery import Celery
from sqlalchemy import Engine, select, update

from lstmq.batching import batch_size_for
from lstmq.contract import QUEUES
from lstmq.db.engine import session_scope
from lstmq.db.queries import CANCELLED_NOTE
from lstmq.db.schema import (
    DOC_PENDING,
    JOB_CANCELLED,
    JOB_QUEUED,
    JOB_SUBMITTING,
    Document,
    Job,
    WorkerBeat,
    as_utc,
    utcnow,
)
from lstmq.db.transitions import fail_pending
from lstmq.errors import ServiceUnavailable
from lstmq.queue import queue_length
from lstmq.sending import RECORDING, PendingSender
from lstmq.settings import Settings

log = logging.getLogger("lstmq.worker")
MAX_FRUITLESS_RECOVERIES = 3
OPEN_STATES = (JOB_SUBMITTING, JOB_QUEUED)  # submitting: recorded, but its sending failed


@dataclass(frozen=True)
class Stalled:
    job: Job
    last_progress: datetime  # last result, or the job's submission or last re-send


def open_jobs(engine: Engine) -> list[Job]:
    """Unfinished jobs with pending documents (an index probe per job, no scan)."""
    pending = select(Document.id).where(Document.job_id == Job.id, Document.status == DOC_PENDING).exists()
    stmt = select(Job).where(Job.state.in_(OPEN_STATES), Job.finished_at.is_(None), pending)
    with session_scope(engine) as session:
        return list(session.scalars(stmt).all())


def last_progress(engine: Engine, job: Job) -> datetime:
    """Its last result, submission, or re-send: whichever is latest."""
    with engine.connect() as conn:
        last_result = conn.scalar(select(Job.progressed_at).where(Job.id == job.id))  # the job's row, not a scan
    return max(as_utc(m) for m in (last_result, job.submitted_at, job.created_at, job.recovered_at) if m)


def candidates(engine: Engine, workers: list[WorkerBeat]) -> list[Job]:
    """Open jobs that no live worker holds, whose queue a live worker consumes."""
    held = {batch.get("job_id") for worker in workers for batch in worker.current}
    consumed = {queue for worker in workers for queue in worker.queues}
    if not consumed:
        return []
    return [
        job
        for job in open_jobs(engine)
        if job.id not in held and QUEUES.get(job.task) in consumed and not job.options.get(RECORDING)
    ]


def stalled_jobs(
    engine: Engine, workers: list[WorkerBeat], stall_after_s: int, now: datetime, queue_empty: Callable[[str], bool]
) -> list[Stalled]:
    """Candidates whose queue is empty (nothing is on its way to a worker) and that made no
    progress for ``stall_after_s``. Cheapest checks first: the broker is asked once per queue,
    and a job's documents are read only when its queue is empty."""
    found, empty = [], {}
    for job in candidates(engine, workers):
        queue = QUEUES[job.task]
        if queue not in empty:
            empty[queue] = queue_empty(queue)
        if not empty[queue]:
            continue
        last = last_progress(engine, job)
        if (now - last).total_seconds() >= stall_after_s:
            found.append(Stalled(job, last))
    return found


def claim(engine: Engine, stalled: Stalled, now: datetime) -> int | None:
    """Take this job's re-send for this interval: its number since the job last made progress,
    or None when another worker took it first (compare-and-set on ``recovered_at``)."""
    job = stalled.job
    fruitless = job.recovered_at is not None and stalled.last_progress <= as_utc(job.recovered_at)
    count = (job.recoveries if fruitless else 0) + 1
    same = Job.recovered_at.is_not_distinct_from(job.recovered_at)  # NULL-safe compare-and-set
    with session_scope(engine) as session:
        taken = session.execute(update(Job).where(Job.id == job.id, same).values(recovered_at=now, recoveries=count))
    return count if taken.rowcount == 1 else None


def unclaim(engine: Engine, stalled: Stalled, now: datetime) -> None:
    """Undo a claim whose re-send could not be published, so it counts for nothing."""
    job = stalled.job
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.recovered_at == now)
            .values(recovered_at=job.recovered_at, recoveries=job.recoveries)
        )


def resend(engine: Engine, app: Celery, stalled: Stalled, settings: Settings, now: datetime, count: int) -> None:
    job = stalled.job
    silent = int((now - stalled.last_progress).total_seconds())
    if count > MAX_FRUITLESS_RECOVERIES:
        give_up(engine, job)
        return
    try:
        # The job's own batch size (submit --batch-size), not this worker's default.
        size = batch_size_for(job.options.get("batch_size"), settings.batch_size)
        sent = PendingSender(engine, app, job, size).finish()
    except ServiceUnavailable:
        unclaim(engine, stalled, now)  # nothing was sent: the broker's outage is not the job's
        raise
    log.warning(
        "job %s stalled (no progress for %d s, no live worker holds it): re-sent %d pending documents "
        "in %d batches (recovery %d)",
        job.id,
        silent,
        sent.docs,
        sent.batches,
        count,
    )


def give_up(engine: Engine, job: Job) -> None:
    error = (
        f"given up: re-sent {MAX_FRUITLESS_RECOVERIES} times without progress (do its batches kill "
        f"their worker?); fix the cause, then `lstmq requeue {job.id} --failed`"
    )
    with session_scope(engine) as session:
        failed = fail_pending(session, job.id, error, utcnow())
    log.error("job %s: %d pending documents failed: %s", job.id, failed, error)


def cancel_abandoned(engine: Engine, stall_after_s: int, now: datetime) -> list[str]:
    """Cancel each job whose submit stopped beating while recording it; returns their ids."""
    with session_scope(engine) as session:
        recording = [
            job for job in session.scalars(select(Job).where(Job.state == JOB_SUBMITTING)) if job.options.get(RECORDING)
        ]
    cancelled = []
    for job in recording:
        seen = max(as_utc(m) for m in (job.progressed_at, job.created_at) if m)
        silent = int((now - seen).total_seconds())
        if silent < stall_after_s:
            continue
        reason = (
            f"its submit stopped (no sign of life for {silent} s) after recording {job.total:,} documents; "
            "the input was only partly recorded: submit it again"
        )
        same = Job.progressed_at.is_not_distinct_from(job.progressed_at)
        options = {key: value for key, value in job.options.items() if key != RECORDING} | {CANCELLED_NOTE: reason}
        with session_scope(engine) as session:  # compare-and-set: a late beat of a live submit wins
            taken = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.state == JOB_SUBMITTING, same)
                .values(state=JOB_CANCELLED, options=options)
            )
        if taken.rowcount == 1:
            log.warning("job %s cancelled: %s", job.id, reason)
            cancelled.append(job.id)
    return cancelled


def reconcile(
    engine: Engine, app: Celery, workers: list[WorkerBeat], settings: Settings, now: datetime | None = None
) -> None:
    """Cancel abandoned submits, re-send each stalled job this worker claims (one pass; the
    heartbeat calls it)."""
    now = now or utcnow()
    cancel_abandoned(engine, settings.stall_after_s, now)

    def queue_empty(queue: str) -> bool:
        return queue_length(app, queue) == 0

    for stalled in stalled_jobs(engine, workers, settings.stall_after_s, now, queue_empty):
        count = claim(engine, stalled, now)
        if count is not None:
            resend(engine, app, stalled, settings, now, count)
