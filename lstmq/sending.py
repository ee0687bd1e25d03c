"""Sending a job's pending documents to the broker: after a submission, and for ``requeue``.

Pages of pending documents are read back from the database (keyset paging, short
transactions) and published as batches by task name. Re-sending a document that a worker
already has is harmless: results are upserts keyed by (document, model, model version).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from lstmq.batching import chunked, utf8_len
from lstmq.contract import MAX_BATCH_BYTES, MAX_MESSAGE_TEXT_CHARS, BatchPayload, DocIn, message_text
from lstmq.db.engine import session_scope
from lstmq.db.queries import get_job, pending_page
from lstmq.db.schema import JOB_CANCELLED, JOB_QUEUED, JOB_SUBMITTING, Job, utcnow
from lstmq.db.transitions import reopen_failed
from lstmq.errors import UserError
from lstmq.queue import send_batch

PAGE_BATCHES = 4  # batches' worth of documents read per database round trip
# In jobs.options while a submit is still reading its input: such a job's documents are an
# incomplete input (a submit in progress, or one that was killed), so requeue refuses it.
# This key is the one record of it: ``jobs.state`` says only whether the job was handed to
# the broker (``submitting`` until then), and a recorded job whose sending failed is
# ``submitting`` too, yet complete and safe to requeue.
RECORDING = "recording"


@dataclass
class SendReport:
    docs: int = 0
    batches: int = 0


class PendingSender:
    """Publishes a job's pending documents in id order, remembering the last id sent.

    While a submit is still recording, ``send(final=False)`` sends only full batches, so
    workers start on the first documents while the rest of the input is being read;
    ``finish()`` sends the remainder and marks the job queued.
    """

    def __init__(self, engine: Engine, app: Celery, job: Job, batch_size: int) -> None:
        self.engine, self.app, self.batch_size = engine, app, batch_size
        self.job_id, self.task, self.model = job.id, job.task, job.model
        self.after_id = 0
        self.report = SendReport()

    def send(self, final: bool) -> SendReport:
        limit = self.batch_size * PAGE_BATCHES
        while True:
            with session_scope(self.engine) as session:
                page = pending_page(session, self.job_id, self.after_id, limit, MAX_MESSAGE_TEXT_CHARS)
            batches = list(chunked(page, self.batch_size, MAX_BATCH_BYTES, lambda doc: utf8_len(doc.text)))
            if not final and len(page) < limit and batches and len(batches[-1]) < self.batch_size:
                batches.pop()  # a partial batch waits for more documents (or the final send)
            for batch in batches:
                self._publish(batch)
            if len(page) < limit:
                return self.report

    def _publish(self, batch: list) -> None:
        docs = [DocIn(id=doc.id, text=message_text(doc.text)) for doc in batch]
        send_batch(self.app, self.task, BatchPayload(job_id=self.job_id, model=self.model, docs=docs))
        self.report.docs += len(docs)
        self.report.batches += 1
        self.after_id = batch[-1].id

    def finish(self) -> SendReport:
        """Send the rest, then mark a submitting job queued; the report counts every send."""
        self.send(final=True)
        _mark_queued(self.engine, self.job_id)
        return self.report


def send_pending(engine: Engine, app: Celery, job: Job, batch_size: int) -> SendReport:
    """Publish every pending document of the job once, then mark a submitting job queued."""
    return PendingSender(engine, app, job, batch_size).finish()


def mark_recorded(engine: Engine, job_id: str) -> None:
    """The input is fully recorded: from now on its pending documents may be sent again."""
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        job.options = {key: value for key, value in job.options.items() if key != RECORDING}


def _mark_queued(engine: Engine, job_id: str) -> None:
    # Only from submitting: a job cancelled meanwhile stays cancelled.
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JOB_SUBMITTING)
            .values(state=JOB_QUEUED, submitted_at=utcnow())
        )


def requeue(engine: Engine, app: Celery, job_id: str, batch_size: int, failed: bool = False) -> SendReport:
    """Send again every document of the job that has no result yet (safe at any time); with
    ``failed``, failed documents too (after their cause is fixed): they are pending again,
    keeping their error until a result lands, and a finished job is open again."""
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        if job.state == JOB_CANCELLED:
            raise UserError(f"job {job_id} is cancelled; not requeued")
        if job.options.get(RECORDING):
            raise UserError(f"job {job_id} is still being recorded, or its submit was interrupted; not requeued")
        if failed:
            _reopen_failed(session, job)
    return send_pending(engine, app, job, batch_size)


def _reopen_failed(session: Session, job: Job) -> None:
    if reopen_failed(session, job.id, utcnow()):
        job.finished_at = None
