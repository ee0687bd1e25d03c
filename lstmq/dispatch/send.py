"""Sending a job's next batch, and a dispatch round over every waiting job.

A batch is made in one transaction: the job's next pending documents after its cursor, the
cursor moved past them by compare-and-set (two dispatchers never send the same documents), and a
``batches`` row; it is published after the commit. A publish that fails leaves the row with
``sent_at`` NULL, and the leader sends it again once the broker is back; a dispatcher killed
between commit and publish leaves a row the leader finds queued but in no queue
(``lstmq.worker.heal.reconcile``). So a batch is never lost and never sent beside itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from lstmq.batching import batch_size_for, chunked, utf8_len
from lstmq.contract import MAX_BATCH_BYTES, MAX_MESSAGE_TEXT_CHARS, QUEUES, BatchPayload, DocIn, message_text
from lstmq.db.engine import session_scope
from lstmq.db.queries import HAS_PENDING
from lstmq.db.schema import (
    JOB_CANCELLED,
    JOB_QUEUED,
    JOB_SUBMITTING,
    RECORDING,
    Batch,
    Job,
    Owner,
    WorkerBeat,
)
from lstmq.dispatch.order import FairShare, Waiting, weight_of
from lstmq.dispatch.reuse import fresh_page
from lstmq.errors import ServiceUnavailable
from lstmq.queue import send_batch
from lstmq.settings import get_settings

log = logging.getLogger("lstmq.dispatch")

FIRST_WINDOW_BATCHES = 2  # batches a submit sends itself, so a job alone on the system starts at once
PREFETCH_MARGIN = 1  # batches queued per worker beyond its slots: the next one is there when a slot frees


def capacity(workers: Sequence[WorkerBeat]) -> Counter[str]:
    """Batches each queue may hold in flight: its live consumers' slots plus a margin each."""
    room: Counter[str] = Counter()
    for worker in workers:
        for queue in worker.queues:
            room[queue] += max(worker.slots or 1, 1) + PREFETCH_MARGIN
    return room


def in_flight(session: Session) -> Counter[tuple[str, str]]:
    """(queue, job id) -> its batches sent and not finished."""
    rows = session.execute(select(Batch.queue, Batch.job_id, func.count()).group_by(Batch.queue, Batch.job_id))
    return Counter({(queue, job_id): n for queue, job_id, n in rows})


def waiting_jobs(session: Session) -> list[Waiting]:
    """Open jobs with pending documents, by their counters (the jobs table only). Some may have
    sent all of them already: ``make_batch`` finds that with one index probe, and the round
    drops them. (An EXISTS over documents here was planned as a scan of the whole table.)"""
    stmt = select(Job.id, Job.task, Job.priority, Job.owner, Job.created_at).where(
        Job.state.in_((JOB_QUEUED, JOB_SUBMITTING)), HAS_PENDING
    )
    return [Waiting(row.id, QUEUES[row.task], row.priority, row.owner, row.created_at) for row in session.execute(stmt)]


@dataclass(frozen=True)
class Round:
    """What a dispatch round sent."""

    batches: int = 0
    docs: int = 0


@dataclass(frozen=True)
class Next:
    """A batch made and committed, to publish."""

    batch_id: int
    task: str
    payload: BatchPayload


def make_batch(session: Session, job_id: str) -> Next | None:
    """The job's next batch, as a row of the caller's transaction, or None: nothing to send, the
    job cancelled, or another dispatcher moved its cursor first. While the job's input is still
    being read, only a full batch (its last one may still grow)."""
    job = session.execute(
        select(Job.dispatched_id, Job.task, Job.model, Job.options, Job.state).where(Job.id == job_id)
    ).one_or_none()
    if job is None or job.state == JOB_CANCELLED:
        return None
    options = job.options or {}
    size = batch_size_for(options.get("batch_size"), get_settings().batch_size)
    page = fresh_page(session, job_id, job, size, MAX_MESSAGE_TEXT_CHARS)  # reused documents are done
    docs = next(chunked(page, size, MAX_BATCH_BYTES, lambda doc: utf8_len(doc.text)), [])
    if not docs or (options.get(RECORDING) and len(docs) < size and len(docs) == len(page)):
        return None
    moved = session.execute(
        update(Job).where(Job.id == job_id, Job.dispatched_id == job.dispatched_id).values(dispatched_id=docs[-1].id)
    )
    if moved.rowcount != 1:
        return None
    batch = Batch(job_id=job_id, queue=QUEUES[job.task], first_id=docs[0].id, last_id=docs[-1].id, docs=len(docs))
    session.add(batch)
    session.flush()
    payload = BatchPayload(
        job_id=job_id,
        model=job.model,
        batch_id=batch.id,
        docs=[DocIn(id=d.id, text=message_text(d.text)) for d in docs],
    )
    return Next(batch.id, job.task, payload)


def publish(engine: Engine, app: Celery, made: Next) -> None:
    """Publish a committed batch; when the broker refuses, mark it unsent (the leader sends it
    again once the broker is back) and raise."""
    try:
        send_batch(app, made.task, made.payload)
    except ServiceUnavailable:
        with session_scope(engine) as session:
            session.execute(update(Batch).where(Batch.id == made.batch_id).values(sent_at=None))
        raise


def send_next(engine: Engine, app: Celery, job_id: str) -> int:
    """Send the job's next batch; the documents it carried (0: nothing was sent)."""
    with session_scope(engine) as session:
        made = make_batch(session, job_id)
    if made is None:
        return 0
    publish(engine, app, made)
    return len(made.payload.docs)


def first_window(engine: Engine, app: Celery, job_id: str, workers: Sequence[WorkerBeat]) -> int:
    """What a submit sends itself: up to ``FIRST_WINDOW_BATCHES`` of the job's batches, while its
    queue has free room (none without a live worker: the dispatcher sends when one starts).
    Returns the documents sent."""
    with session_scope(engine) as session:
        queue = QUEUES[session.scalar(select(Job.task).where(Job.id == job_id))]
        flight = in_flight(session)
        mine = flight.get((queue, job_id), 0)
        free = capacity(workers)[queue] - sum(n for (q, _job), n in flight.items() if q == queue)
    sent = 0
    for _ in range(max(0, min(FIRST_WINDOW_BATCHES - mine, free))):
        docs = send_next(engine, app, job_id)
        if not docs:
            break
        sent += docs
    return sent


def dispatch_round(engine: Engine, app: Celery, workers: Sequence[WorkerBeat], fair: FairShare) -> Round:
    """Fill every queue up to its capacity, in the order ``fair`` chooses. A job that turns out
    to have nothing to send leaves the round; a broker outage ends it."""
    room = capacity(workers)
    with session_scope(engine) as session:
        flight = in_flight(session)
        free = {queue: room[queue] - sum(n for (q, _job), n in flight.items() if q == queue) for queue in room}
        if not any(n > 0 for n in free.values()):
            return Round()
        jobs = waiting_jobs(session)
        weights = dict(session.execute(select(Owner.name, Owner.weight)).all())
    for job in jobs:
        job.in_flight = flight.get((job.queue, job.id), 0)
    fair.keep_only(jobs)
    batches = docs = 0
    while (job := fair.pick(j for j in jobs if free.get(j.queue, 0) > 0)) is not None:
        with session_scope(engine) as session:
            made = make_batch(session, job.id)
        if made is None:
            jobs.remove(job)
            continue
        publish(engine, app, made)
        fair.served(job, weight_of(weights, job.owner))
        free[job.queue] -= 1
        batches, docs = batches + 1, docs + len(made.payload.docs)
    return Round(batches, docs)
