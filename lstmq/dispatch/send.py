"""Sending a job's next batch, and a dispatch round over every waiting job.

A batch is made in a transaction: the job's next pending documents after its cursor, the cursor
moved past them by compare-and-set (two dispatchers never send the same documents), and a
``batches`` row; it is published after the commit. A publish that fails leaves the row with
``sent_at`` NULL, and the leader sends it again once the broker is back; a dispatcher killed
between commit and publish leaves a row the leader finds queued but in no queue
(``lstmq.worker.heal.reconcile``). So a batch is never lost and never sent beside itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from lstmq.batching import batch_size_for, chunked
from lstmq.contract import MAX_BATCH_BYTES, MAX_TEXT_BYTES, QUEUES, batch_message
from lstmq.db.engine import session_scope
from lstmq.db.queries import HAS_PENDING
from lstmq.db.schema import (
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

OPEN = (JOB_QUEUED, JOB_SUBMITTING)  # a job whose batches may still be sent
FIRST_WINDOW_BATCHES = 2  # batches a submit sends itself, so a job alone on the system starts at once
PREFETCH_MARGIN = 1  # batches queued per worker beyond its slots: the next one is there when a slot frees
# Batches made in one transaction before they are published: fewer commits when many slots are
# free (a worker starting), while the first of them still goes out after a few milliseconds.
BATCHES_PER_COMMIT = 8


def capacity(workers: Sequence[WorkerBeat]) -> Counter[str]:
    """Batches each queue may hold in flight: its live consumers' slots plus a margin each."""
    room: Counter[str] = Counter()
    for worker in workers:
        for queue in worker.queues:
            room[queue] += max(worker.slots or 1, 1) + PREFETCH_MARGIN
    return room


Db = Session | Connection  # the dispatcher's own rounds run on a Connection: no ORM is needed

# Statements built once: a round runs at every finished batch, and building a statement in
# SQLAlchemy costs more than PostgreSQL takes to run it.
_IN_FLIGHT = select(Batch.queue, Batch.job_id, func.count()).group_by(Batch.queue, Batch.job_id)
_WAITING = select(
    Job.id, Job.task, Job.model, Job.options, Job.dispatched_id, Job.priority, Job.owner, Job.created_at
).where(Job.state.in_(OPEN), HAS_PENDING)
_MOVE = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.dispatched_id == bindparam("cursor"), Job.state.in_(OPEN))
    .values(dispatched_id=bindparam("to"))
)
_RECORD = insert(Batch).returning(Batch.id)


def in_flight(db: Db) -> Counter[tuple[str, str]]:
    """(queue, job id) -> its batches sent and not finished."""
    return Counter({(queue, job_id): n for queue, job_id, n in db.execute(_IN_FLIGHT)})


def queued_in(flight: Counter[tuple[str, str]], queue: str) -> int:
    """The batches in flight on ``queue``, of every job."""
    return sum(n for (q, _job), n in flight.items() if q == queue)


@dataclass
class Source:
    """What making a job's next batch needs, read with the waiting jobs once per round: the
    batch's cursor moves here as batches are made, and by compare-and-set in the database."""

    id: str
    task: str
    model: str
    options: dict
    cursor: int


def waiting_jobs(db: Db) -> tuple[list[Waiting], dict[str, Source]]:
    """Open jobs with pending documents, by their counters (the jobs table only), and what making
    their batches needs. Some may have sent all of them already: ``make_batch`` finds that with
    one index probe, and the round drops them. (An EXISTS over documents here was planned as a
    scan of the whole table.)"""
    jobs, sources = [], {}
    for row in db.execute(_WAITING):
        jobs.append(Waiting(row.id, QUEUES[row.task], row.priority, row.owner, row.created_at))
        sources[row.id] = Source(row.id, row.task, row.model, row.options or {}, row.dispatched_id)
    return jobs, sources


def source_of(session: Session, job_id: str) -> Source | None:
    row = session.execute(
        select(Job.task, Job.model, Job.options, Job.dispatched_id).where(Job.id == job_id, Job.state.in_(OPEN))
    ).one_or_none()
    return None if row is None else Source(job_id, row.task, row.model, row.options or {}, row.dispatched_id)


def owner_weights(db: Db) -> dict[str, int]:
    return dict(db.execute(select(Owner.name, Owner.weight)).all())


@dataclass(frozen=True)
class Round:
    """What a dispatch round sent."""

    batches: int = 0
    docs: int = 0


@dataclass(frozen=True)
class Next:
    """A batch made and committed, to publish: its message as JSON (``batch_message``)."""

    batch_id: int
    task: str
    payload: dict


def make_batch(db: Db, job: Source) -> Next | None:
    """The job's next batch, as a row of the caller's transaction, or None: nothing to send, the
    job no longer open, or another dispatcher moved its cursor first. While the job's input is
    still being read, only a full batch (its last one may still grow). Statements: the page (and
    its results reused, ``lstmq.dispatch.reuse``), the cursor's compare-and-set (which also sees
    a cancel), the batch's row."""
    size = batch_size_for(job.options.get("batch_size"), get_settings().batch_size)
    page = fresh_page(db, job, size)  # documents whose result was reused are done, not in it
    # What the worker reads of a text is cut to MAX_TEXT_CHARS (at most MAX_TEXT_BYTES).
    docs = next(chunked(page, size, MAX_BATCH_BYTES, lambda doc: min(doc.size, MAX_TEXT_BYTES)), [])
    if not docs or (job.options.get(RECORDING) and len(docs) < size and len(docs) == len(page)):
        return None
    moved = db.execute(_MOVE, {"job": job.id, "cursor": job.cursor, "to": docs[-1].id})
    if moved.rowcount != 1:
        return None
    job.cursor = docs[-1].id
    queue = QUEUES[job.task]
    row = {"job_id": job.id, "queue": queue, "first_id": docs[0].id, "last_id": docs[-1].id, "docs": len(docs)}
    batch_id = db.execute(_RECORD, row).scalar_one()
    return Next(batch_id, job.task, batch_message(job.id, job.model, batch_id, [doc.id for doc in docs]))


def publish(engine: Engine, app: Celery, made: Sequence[Next] | Next) -> None:
    """Publish committed batches in order; when the broker refuses one, mark it and those after
    it unsent (the leader sends them again once the broker is back) and raise."""
    made = [made] if isinstance(made, Next) else list(made)
    for i, batch in enumerate(made):
        try:
            send_batch(app, batch.task, batch.payload)
        except ServiceUnavailable:
            with session_scope(engine) as session:
                unsent = [b.batch_id for b in made[i:]]
                session.execute(update(Batch).where(Batch.id.in_(unsent)).values(sent_at=None))
            raise


def first_window(engine: Engine, app: Celery, job_id: str, workers: Sequence[WorkerBeat]) -> int:
    """What a submit sends itself: up to ``FIRST_WINDOW_BATCHES`` of the job's batches, while its
    queue has free room (none without a live worker: the dispatcher sends when one starts).
    Returns the documents sent."""
    made: list[Next] = []
    with session_scope(engine) as session:
        job = source_of(session, job_id)
        if job is None:
            return 0
        queue = QUEUES[job.task]
        flight = in_flight(session)
        mine = flight.get((queue, job_id), 0)
        free = capacity(workers)[queue] - queued_in(flight, queue)
        for _ in range(max(0, min(FIRST_WINDOW_BATCHES - mine, free))):
            batch = make_batch(session, job)
            if batch is None:
                break
            made.append(batch)
    publish(engine, app, made)
    return sum(len(batch.payload["ids"]) for batch in made)


def dispatch_round(
    engine: Engine,
    app: Celery,
    workers: Sequence[WorkerBeat],
    fair: FairShare,
    weights: Mapping[str, int] | None = None,
) -> Round:
    """Fill every queue up to its capacity, in the order ``fair`` chooses; ``weights``: the
    owners' (read here unless the caller keeps them). Batches are made up to
    ``BATCHES_PER_COMMIT`` per transaction and published after its commit. A job that turns out
    to have nothing to send leaves the round; a broker outage ends it."""
    room = capacity(workers)
    with engine.connect() as db:  # one connection for the round: one checkout, not one per step
        with db.begin():
            flight = in_flight(db)
            free = {queue: room[queue] - queued_in(flight, queue) for queue in room}
            if not any(n > 0 for n in free.values()):
                return Round()
            jobs, sources = waiting_jobs(db)
            if weights is None:
                weights = owner_weights(db)
        for job in jobs:
            job.in_flight = flight.get((job.queue, job.id), 0)
        fair.keep_only(jobs)
        batches = docs = 0
        while True:
            made: list[Next] = []
            with db.begin():
                while len(made) < BATCHES_PER_COMMIT and (
                    job := fair.pick(j for j in jobs if free.get(j.queue, 0) > 0)
                ):
                    batch = make_batch(db, sources[job.id])
                    if batch is None:
                        jobs.remove(job)
                        continue
                    fair.served(job, weight_of(weights, job.owner))
                    free[job.queue] -= 1
                    made.append(batch)
            if not made:
                return Round(batches, docs)
            publish(engine, app, made)
            batches, docs = batches + len(made), docs + sum(len(batch.payload["ids"]) for batch in made)
