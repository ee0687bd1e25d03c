"""The reconciler: finds batches that no message will ever bring to a worker, and sends them again.

The dispatcher knows every batch in flight (``batches``); a message may still be lost: Redis
restarted without persistence, a worker died holding the batch (SIGKILL, OOM), a publish was
refused while the broker was down, or a dispatcher died between recording a batch and publishing
it. Each worker looks every heartbeat; a batch is *lost* when it is

- *unsent*: its publish failed (``sent_at`` NULL): sent again at once;
- *killed*: taken by a worker that is no longer alive (no beat for ``LIVE_BEATS`` heartbeats)
  and held by no live worker: sent again, and counted; after ``MAX_KILLS`` such deaths its
  documents are failed with the reason (a "poison" batch: ``lstmq requeue JOB --failed``
  retries them);
- *dropped*: queued for ``LSTMQ_STALL_AFTER_S``, held by no live worker, and older than the
  messages its queue still holds (a queue is first in, first out: the newest batches are the
  ones still in it).

A batch waiting for its retry is taken by its live worker, so it is never any of these. Re-sends
are compare-and-set on the batch's row (one re-send whichever worker looks first) and harmless
besides: a document already done is skipped, results are upserts.

A job still being recorded whose submit gave no sign of life for ``LSTMQ_STALL_AFTER_S``
(``lstmq.producer.liveness``: the submit was killed) is cancelled, with the reason in its options:
its input was only partly recorded, so finishing it would pass off part of a job as the whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import Engine, delete, select, update

from lstmq.contract import batch_message
from lstmq.db.engine import session_scope
from lstmq.db.queries import CANCELLED_NOTE, LIVE_BEATS
from lstmq.db.schema import (
    BATCH_QUEUED,
    BATCH_RUNNING,
    DOC_PENDING,
    JOB_CANCELLED,
    JOB_SUBMITTING,
    RECORDING,
    Batch,
    Document,
    Job,
    WorkerBeat,
    as_utc,
    utcnow,
)
from lstmq.db.transitions import mark_failed
from lstmq.dispatch.send import Next, publish
from lstmq.queue import queue_length
from lstmq.settings import Settings
from lstmq.webhooks import events

log = logging.getLogger("lstmq.worker")
MAX_KILLS = 3  # workers a batch may take down with it before its documents are failed
UNSENT, KILLED, DROPPED = "unsent", "killed", "dropped"


@dataclass(frozen=True)
class Lost:
    batch: Batch
    why: str  # UNSENT | KILLED | DROPPED


def lost_batches(
    engine: Engine,
    workers: list[WorkerBeat],
    settings: Settings,
    now: datetime,
    queue_length: Callable[[str], int],
) -> list[Lost]:
    """The batches in flight that no message will bring to a worker. The broker is asked (once
    per queue) only when a queue has batches old enough to be dropped ones."""
    live = {(worker.name, worker.pid) for worker in workers}
    held = {batch.get("batch_id") for worker in workers for batch in worker.current}
    grace = timedelta(seconds=settings.heartbeat_s * LIVE_BEATS)
    stall = timedelta(seconds=settings.stall_after_s)
    with session_scope(engine) as session:
        rows = list(session.scalars(select(Batch).order_by(Batch.id)))
        session.expunge_all()
    lost = [Lost(b, UNSENT) for b in rows if b.state == BATCH_QUEUED and b.sent_at is None]
    lost += [
        Lost(b, KILLED)
        for b in rows
        if b.state == BATCH_RUNNING
        and (b.worker, b.worker_pid) not in live
        and b.id not in held
        and now - as_utc(b.started_at or b.sent_at or now) >= grace
    ]
    waiting: dict[str, list[Batch]] = {}
    for b in rows:
        if b.state == BATCH_QUEUED and b.sent_at is not None and b.id not in held:
            waiting.setdefault(b.queue, []).append(b)
    for queue, batches in waiting.items():
        old = [b for b in batches if now - as_utc(b.sent_at) >= stall]
        if not old:
            continue
        newest_first = sorted(batches, key=lambda b: as_utc(b.sent_at), reverse=True)
        in_queue = {b.id for b in newest_first[: queue_length(queue)]}
        lost += [Lost(b, DROPPED) for b in old if b.id not in in_queue]
    return lost


def recover(engine: Engine, app: Celery, lost: Lost, now: datetime) -> None:
    """Send a lost batch again (compare-and-set: only the first worker to look does), or fail its
    documents when it has killed ``MAX_KILLS`` workers, or drop its row when nothing is left."""
    b = lost.batch
    kills = b.kills + (lost.why == KILLED)
    with session_scope(engine) as session:
        job = session.get(Job, b.job_id)
        docs = [] if job is None or job.state == JOB_CANCELLED else _pending_in(session, b)
        same = [Batch.id == b.id, Batch.state == b.state, Batch.sends == b.sends, Batch.kills == b.kills]
        if not docs:
            session.execute(delete(Batch).where(*same))
            return
        if kills >= MAX_KILLS:
            _give_up(session, b, job, [doc.id for doc in docs], kills, now)
            session.execute(delete(Batch).where(*same))
            return
        taken = session.execute(
            update(Batch)
            .where(*same)
            .values(state=BATCH_QUEUED, worker=None, worker_pid=None, sent_at=now, sends=b.sends + 1, kills=kills)
        )
        if taken.rowcount != 1:
            return
        if _count_recovery(job, now):
            events.emit(session, job.id, [events.JOB_STALLED], now)
        made = Next(b.id, job.task, batch_message(job.id, job.model, b.id, [doc.id for doc in docs]))
    publish(engine, app, made)
    log.warning(
        "job %s: batch %d %s; re-sent its %d pending documents (send %d)",
        b.job_id,
        b.id,
        {UNSENT: "was never published", KILLED: "lost its worker", DROPPED: "was lost by the broker"}[lost.why],
        len(docs),
        b.sends + 1,
    )


def _pending_in(session, b: Batch) -> list:
    stmt = (
        select(Document.id)
        .where(Document.job_id == b.job_id, Document.status == DOC_PENDING)
        .where(Document.id >= b.first_id, Document.id <= b.last_id)
        .order_by(Document.id)
    )
    return list(session.execute(stmt))


def _count_recovery(job: Job, now: datetime) -> bool:
    """Recoveries since the job last made progress, for `lstmq status` ("recovering 2x"); True
    when this one begins a streak (the job's webhooks hear of it once: ``job.stalled``)."""
    fruitless = job.recovered_at is not None and as_utc(job.progressed_at or job.created_at) <= as_utc(job.recovered_at)
    job.recoveries = (job.recoveries if fruitless else 0) + 1
    job.recovered_at = now
    return not fruitless


def _give_up(session, b: Batch, job: Job, ids: list[int], kills: int, now: datetime) -> None:
    error = (
        f"given up: {kills} workers died while running its batch (do these documents kill their worker?); "
        f"fix the cause, then `lstmq requeue {job.id} --failed`"
    )
    mark_failed(session, dict.fromkeys(ids, error), now, job.id)
    log.error("job %s: %d documents of batch %d failed: %s", job.id, len(ids), b.id, error)


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
                events.emit(session, job.id, [events.JOB_CANCELLED], now)
        if taken.rowcount == 1:
            log.warning("job %s cancelled: %s", job.id, reason)
            cancelled.append(job.id)
    return cancelled


def reconcile(
    engine: Engine, app: Celery, workers: list[WorkerBeat], settings: Settings, now: datetime | None = None
) -> None:
    """Cancel abandoned submits, then send every lost batch again (one pass; the heartbeat calls it)."""
    now = now or utcnow()
    cancel_abandoned(engine, settings.stall_after_s, now)
    for lost in lost_batches(engine, workers, settings, now, lambda queue: queue_length(app, queue)):
        recover(engine, app, lost, now)
