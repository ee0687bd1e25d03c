"""Submitting records: record the job and its documents; the dispatcher sends them.

1. *record*: documents are inserted in chunks (bounded memory; ``COPY`` on PostgreSQL, see
   ``lstmq.producer.recording``) while the job is marked as recording (``lstmq.sending.RECORDING``;
   ``requeue`` refuses it). A failure here, a ``--strict`` refusal, an input with no good
   record, Ctrl-C or SIGTERM deletes the job again, leaving nothing in the database. A job
   cancelled meanwhile (``lstmq cancel``, or the reconciler when the submit stopped showing
   signs of life, ``lstmq.producer.liveness``) stops the submit and stays, cancelled.
2. *queue*: the job is marked queued and the dispatcher woken (``lstmq.dispatch``), which sends
   its batches as its priority and owner's share allow.

Without ``--strict``, after each recorded chunk the submit tops its job up to a small first
window of batches in flight (``lstmq.dispatch.send.first_window``) while workers have room, so
a job alone on the system starts while a large input is still being read; the dispatcher
sends full batches of a job still recording too. A document is always committed before its
batch is published. A broker outage while recording only delays the sends: the dispatcher sends
what could not be published once the broker is back. If the input then fails midway, the job is
deleted and batches already sent name a job that no longer exists, which workers skip.
``--strict`` sends nothing until the whole input has validated.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import sys
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from math import ceil
from time import perf_counter

from celery import Celery
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from lstmq import stages
from lstmq.batching import batch_size_for, chunked
from lstmq.contract import TASK_NAMES
from lstmq.db.engine import session_scope
from lstmq.db.queries import live_workers
from lstmq.db.schema import DEFAULT_PRIORITY, RECORDING, Document, Job
from lstmq.dispatch.control import check_priority
from lstmq.dispatch.reuse import REUSE
from lstmq.dispatch.send import first_window
from lstmq.errors import InputError, ModelNotFound, SubmitCancelled, TransientError
from lstmq.modelstore import find_model
from lstmq.producer.liveness import RecordingLease, beat
from lstmq.producer.recording import record_rows
from lstmq.queue import ping_broker
from lstmq.readers.records import Record, Rejected
from lstmq.sending import mark_recorded
from lstmq.settings import Settings, get_settings
from lstmq.webhooks.events import NOTIFY
from lstmq.webhooks.receivers import check_receivers

log = logging.getLogger("lstmq.producer")
INSERT_CHUNK_DOCS = 500  # documents in the first INSERT transaction: workers start on them at once
INSERT_CHUNK_MAX_DOCS = 8192  # each later one twice the one before, up to this (a commit per 500 cost ~20 %)
INSERT_CHUNK_BYTES = 16 * 1024 * 1024  # text bytes per INSERT transaction (bounds memory)
MODEL_KIND_FOR_TASK = {"classify": "classifier", "render": "generator"}


@dataclass
class SubmitReport:
    job_id: str
    total: int = 0  # documents recorded (and sent)
    rejected: int = 0  # bad records plus duplicate ids
    batches: int = 0

    @property
    def read(self) -> int:
        return self.total + self.rejected


def check_task(task: str) -> None:
    if task not in TASK_NAMES:
        raise InputError(f"unknown task {task!r} (expected {', '.join(TASK_NAMES)})")


def check_model(task: str, model: str) -> None:
    """The model is installed and of the kind the task needs (raises a one-line UserError)."""
    info = find_model(model)
    wanted = MODEL_KIND_FOR_TASK[task]
    if info.kind != wanted:
        raise ModelNotFound(f"model {model!r} is a {info.kind}; task {task} needs a {wanted}")


def default_owner() -> str:
    """The owner of a CLI submission without --owner: the OS user."""
    try:
        return getpass.getuser()[:64] or "local"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "local"


def submit_records(
    engine: Engine,
    app: Celery,
    items: Iterable[Record | Rejected],
    *,
    task: str,
    model: str,
    batch_size: int | None = None,
    strict: bool = False,
    sources: Sequence[str] = (),
    priority: str = DEFAULT_PRIORITY,
    owner: str | None = None,
    notify: Sequence[str] = (),
    reuse: bool = True,
    on_reject: Callable[[Rejected], None] | None = None,
    on_job: Callable[[str], None] | None = None,
) -> SubmitReport:
    """Record every good item as a document of a new job, then queue them all.

    A ``Record`` without ``external_id`` gets its 0-based number among all ``items``.
    Raises ``InputError`` (and leaves nothing in the database) when ``strict`` and any item
    was rejected, or when no item was good. ``on_job`` learns the job's id once it exists.
    ``owner``: whose share of the workers the job uses (default: the OS user). ``notify``: webhook
    receivers of the job's events (``lstmq.webhooks``), checked before anything is read.
    ``reuse``: False runs the model on every document, even one whose text already has a result
    of the model's version (``lstmq.dispatch.reuse``).
    """
    check_task(task)
    check_model(task, model)
    check_priority(priority)
    settings = get_settings()
    receivers = check_receivers(notify, settings)
    size = batch_size_for(batch_size, settings.batch_size)
    ping_broker(app)  # fail before reading a large input, not after
    owner = (owner or default_owner())[:64]
    options = ({NOTIFY: receivers} if receivers else {}) | ({} if reuse else {REUSE: False})
    job = _create_job(engine, task, model, sources, size, strict, priority, owner, options)
    report = SubmitReport(job_id=job.id)
    lease = RecordingLease(engine, job.id, settings.heartbeat_s)
    window = FirstWindow(engine, app, job.id, settings)

    def after_chunk() -> None:
        lease.check(report.total)
        if not strict:
            window.top_up()

    with lease:
        try:
            if on_job:
                on_job(job.id)
            _record_all(engine, report, items, on_reject or (lambda _r: None), after_chunk, lease)
            _refuse_unless_acceptable(report, strict)
        except SubmitCancelled:
            raise  # cancelled by someone else: the job stays, cancelled, with what it recorded
        except BaseException:
            # An interrupt (Ctrl-C) inside a statement leaves its cursor referenced from the
            # traceback; on SQLite that cursor holds the write lock the delete needs.
            traceback.clear_frames(sys.exc_info()[2])
            _delete_job(engine, report.job_id)
            raise
    mark_recorded(engine, report.job_id)
    window.top_up()
    report.batches = ceil(report.total / size)
    return report


class FirstWindow:
    """The batches a submit sends itself (``first_window``): counted as stage "send". A broker
    outage is warned of once and does not stop the recording: the dispatcher sends what could
    not be published once the broker is back."""

    def __init__(self, engine: Engine, app: Celery, job_id: str, settings: Settings) -> None:
        self.engine, self.app, self.job_id, self.settings = engine, app, job_id, settings
        self.warned = False

    def top_up(self) -> None:
        start = perf_counter()
        try:
            with session_scope(self.engine) as session:
                workers = live_workers(session, self.settings.heartbeat_s)
            sent = first_window(self.engine, self.app, self.job_id, workers)
        except TransientError as exc:
            if not self.warned:
                self.warned = True
                log.warning("%s; the job is recorded, its batches are sent once the broker is back", exc)
            return
        stages.add("send", sent, perf_counter() - start)


def _create_job(
    engine: Engine, task: str, model: str, sources, size: int, strict: bool, priority: str, owner: str, options: dict
) -> Job:
    job = Job(
        id=uuid.uuid4().hex,
        task=task,
        model=model,
        priority=priority,
        owner=owner,
        sources=list(sources),
        options={"batch_size": size, "strict": strict, RECORDING: True} | options,
    )
    with session_scope(engine) as session:
        session.add(job)
    return job


def _refuse_unless_acceptable(report: SubmitReport, strict: bool) -> None:
    if strict and report.rejected:
        raise InputError(f"{report.rejected} of {report.read} records rejected; nothing submitted (--strict)")
    if report.total == 0:
        raise InputError(f"no good records ({report.rejected} rejected); nothing submitted")


def _record_all(engine: Engine, report: SubmitReport, items, on_reject, after_chunk, lease: RecordingLease) -> None:
    def good_rows():
        for number, item in enumerate(stages.counted("read", items)):
            if isinstance(item, Rejected):
                report.rejected += 1
                on_reject(item)
            else:
                encoded = item.text.encode("utf-8")  # once: for the chunk's size and for the hash
                yield item, item.external_id if item.external_id is not None else str(number), encoded

    own_ids = False  # has a record of this job brought its own id? Until then, every id is new.
    sizes = (INSERT_CHUNK_DOCS, INSERT_CHUNK_BYTES, lambda row: len(row[2]), INSERT_CHUNK_MAX_DOCS)
    for chunk in chunked(good_rows(), *sizes):
        own_ids = own_ids or any(record.external_id is not None for record, _id, _encoded in chunk)
        _insert_chunk(engine, report, chunk, on_reject, lease, all_new=not own_ids)
        after_chunk()
    with session_scope(engine) as session:
        lease.touched(_save_counts(session, report))
    lease.check(report.total)


def _insert_chunk(
    engine: Engine, report: SubmitReport, chunk: list[tuple[Record, str, bytes]], on_reject, lease, all_new
) -> None:
    """Insert one chunk; a later record whose id the job already has is rejected.

    The first record with an id is kept within the chunk; the job's unique (job_id,
    external_id) constraint finds ids taken by earlier chunks (``lstmq.producer.recording``): a
    SELECT ... IN (ids) of a table that is growing faster than its planner statistics turned
    into sequential scans, most of a large submission's time on PostgreSQL."""
    rows = _first_rows(chunk)
    with stages.timed("record", len(rows)), session_scope(engine) as session:
        inserted = record_rows(session, report.job_id, rows, all_new)
        report.total += len(inserted)
        for record, external_id, _encoded in chunk:
            if external_id in inserted:
                inserted.discard(external_id)  # the first record with this id is the one kept
            else:
                report.rejected += 1
                on_reject(Rejected(record.source, record.line_no, f"duplicate id {external_id!r}"))
        lease.touched(_save_counts(session, report))


def _first_rows(chunk: list[tuple[Record, str, bytes]]) -> list[tuple]:
    """Each id's first record of the chunk, in input order, as a row in ``lstmq.producer.recording.COLUMNS``
    order; the texts hashed in one pass over the chunk."""
    firsts: dict[str, tuple[Record, bytes]] = {}
    for record, external_id, encoded in chunk:
        firsts.setdefault(external_id, (record, encoded))
    with stages.timed("hash", len(firsts)):
        hashes = [hashlib.sha256(encoded).hexdigest() for _record, encoded in firsts.values()]
    return [
        (external_id, record.source, record.record_no, record.line_no, digest, record.text)
        for (external_id, (record, _encoded)), digest in zip(firsts.items(), hashes, strict=True)
    ]


def _save_counts(session, report: SubmitReport) -> bool:
    """Keep jobs.total/rejected current while recording, so `lstmq status` can follow along
    (pending is total - done - failed); this is also the submit's sign of life
    (``lstmq.producer.liveness``). False when the job is no longer submitting (cancelled)."""
    return beat(session, report.job_id, total=report.total, rejected=report.rejected)


def _delete_job(engine: Engine, job_id: str) -> None:
    # Nothing was sent yet, so removing the rows loses nothing. If the database itself is
    # failing, the original error is the one worth reporting.
    with suppress(SQLAlchemyError), session_scope(engine) as session:
        session.execute(delete(Document).where(Document.job_id == job_id))
        session.execute(delete(Job).where(Job.id == job_id))
