"""A job's sending states: recording, recorded, queued, and requeued.

What is sent when is the dispatcher's (``lstmq.dispatch``): these functions only change what a
job offers it. Re-sending a document that a worker already has is harmless: results are
upserts keyed by (document, model, model version).
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from lstmq.batching import batch_size_for
from lstmq.db.engine import session_scope
from lstmq.db.queries import get_job
from lstmq.db.schema import DOC_PENDING, JOB_CANCELLED, JOB_QUEUED, JOB_SUBMITTING, RECORDING, Document, Job, utcnow
from lstmq.db.transitions import finish_if_complete, reopen_failed
from lstmq.dispatch.wake import notify
from lstmq.errors import UserError

# RECORDING is in jobs.options while a submit is still reading its input: such a job's documents
# are an incomplete input (a submit in progress, or one that was killed), so requeue refuses it
# and the dispatcher sends only its full batches. This key is the one record of it: ``jobs.state``
# says only whether the whole input was recorded (``submitting`` until then).


def mark_recorded(engine: Engine, job_id: str) -> None:
    """The input is fully recorded: the job is queued (unless cancelled meanwhile), or finished
    when every document already has its result, and the dispatcher is woken to send the rest."""
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        job.options = {key: value for key, value in job.options.items() if key != RECORDING}
        # Only from submitting: a job cancelled meanwhile stays cancelled.
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JOB_SUBMITTING)
            .values(state=JOB_QUEUED, submitted_at=utcnow())
        )
        finish_if_complete(session, job_id, utcnow())
        notify(session)


def requeue(engine: Engine, job_id: str, batch_size: int | None = None, failed: bool = False) -> int:
    """Offer every document of the job that has no result yet to the dispatcher again (safe at
    any time); with ``failed``, failed documents too (after their cause is fixed): they are
    pending again, keeping their error until a result lands, and a finished job is open again.
    ``batch_size``: the job's batches from now on. Returns the documents to send."""
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        if job.state == JOB_CANCELLED:
            raise UserError(f"job {job_id} is cancelled; not requeued")
        if job.options.get(RECORDING):
            raise UserError(f"job {job_id} is still being recorded, or its submit was interrupted; not requeued")
        if failed:
            reopen_failed(session, job.id, utcnow())  # a finished job with failures is queued again
        if batch_size is not None:
            job.options = {**job.options, "batch_size": batch_size_for(batch_size, batch_size)}
        job.dispatched_id = 0
        job.recoveries = 0
        if job.state == JOB_SUBMITTING:
            job.state, job.submitted_at = JOB_QUEUED, utcnow()
            session.flush()
            finish_if_complete(session, job.id, utcnow())
        notify(session)
        return _pending(session, job_id)


def _pending(session: Session, job_id: str) -> int:
    return session.scalar(select(func.count()).where(Document.job_id == job_id, Document.status == DOC_PENDING))
