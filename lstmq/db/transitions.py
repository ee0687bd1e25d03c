"""Every change of a document's status, with its job's counters moved in the same transaction.

Each UPDATE names the status it moves documents from, and its rowcount is what the counters
move by: a document that a redelivered or concurrent copy of its batch already moved is not
counted twice (PostgreSQL re-checks the WHERE of a row it waited for under READ COMMITTED;
SQLite serialises writers). The job row comes last in every transaction, after the documents,
so two writers never wait for each other in opposite orders, and it is held only until commit.

A job's end is stored here too: the update that leaves a queued job with nothing pending makes
it ``finished`` with ``finished_at`` in the same transaction (the job row is locked by then, so
of two concurrent last batches exactly one sees the job complete), and one that makes a finished
job's documents pending again (requeue --failed) opens it again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from lstmq.db.dialects import any_of, bind_of, values_for
from lstmq.db.queries import JobStatus, job_status
from lstmq.db.schema import (
    DOC_DONE,
    DOC_FAILED,
    DOC_PENDING,
    JOB_CANCELLED,
    JOB_FINISHED,
    JOB_QUEUED,
    JOB_SUBMITTING,
    Document,
    Job,
    utcnow,
)
from lstmq.webhooks import events

DOCUMENTS, JOBS = Document.__table__, Job.__table__
COUNTED = (JOBS.c.state, JOBS.c.total, JOBS.c.done_count, JOBS.c.failed_count)


def mark_done(session: Session, ids: Collection[int], now: datetime, job_id: str | None = None) -> None:
    """Pending or failed documents of one job become done, their error cleared. ``job_id``: their
    job, when the caller knows it (a worker does: one query fewer per batch)."""
    job_id = job_id if ids and job_id else _job_of(session, ids)
    if job_id is None:
        return
    moved = _move(session, ids, DOC_PENDING, DOC_DONE, now, clear_error=True)
    refailed = _move(session, ids, DOC_FAILED, DOC_DONE, now, clear_error=True) if moved < len(ids) else 0
    count(session, job_id, now, done=moved + refailed, failed=-refailed)


def mark_failed(session: Session, errors: dict[int, str], now: datetime, job_id: str | None = None) -> None:
    """Pending documents of one job become failed, each with its own error; a failed one takes
    the new error; a done one stays done (its result is written). ``job_id`` as for ``mark_done``."""
    job_id = job_id if errors and job_id else _job_of(session, errors)
    if job_id is None:
        return
    moved = _move(session, errors, DOC_PENDING, DOC_FAILED, now)
    stmt = (
        update(DOCUMENTS)
        .where(DOCUMENTS.c.id == bindparam("doc_id"), DOCUMENTS.c.status == DOC_FAILED)
        .values(error=bindparam("message"), updated_at=now)
    )
    session.execute(stmt, [{"doc_id": doc_id, "message": error} for doc_id, error in errors.items()])
    count(session, job_id, now, failed=moved)


def mark_reused(session: Session, ids: Collection[int], now: datetime, job_id: str) -> int:
    """Pending documents of the job whose result was copied from another document's become done:
    counted as done and as reused. Returns how many moved."""
    moved = _move(session, ids, DOC_PENDING, DOC_DONE, now, clear_error=True) if ids else 0
    count(session, job_id, now, done=moved, reused=moved)
    return moved


def fail_pending(session: Session, job_id: str, error: str, now: datetime) -> int:
    """Every pending document of the job becomes failed with ``error``; returns how many."""
    failed = session.execute(
        update(DOCUMENTS)
        .where(DOCUMENTS.c.job_id == job_id, DOCUMENTS.c.status == DOC_PENDING)
        .values(status=DOC_FAILED, error=error, updated_at=now)
    ).rowcount
    count(session, job_id, now, failed=failed)
    return failed


def reopen_failed(session: Session, job_id: str, now: datetime) -> int:
    """Failed documents of the job are pending again (their error kept until a result lands)."""
    reopened = session.execute(
        update(DOCUMENTS)
        .where(DOCUMENTS.c.job_id == job_id, DOCUMENTS.c.status == DOC_FAILED)
        .values(status=DOC_PENDING, updated_at=now)
    ).rowcount
    count(session, job_id, now, failed=-reopened)
    return reopened


def count(session: Session, job_id: str, now: datetime, done: int = 0, failed: int = 0, reused: int = 0) -> None:
    """Move the job's counters (nothing to do when nothing moved); ``progressed_at`` never goes back.
    The job finishes when nothing is left pending, and is open again when something is.
    ``reused``: of ``done``, those whose result was copied (they are done too)."""
    if done or failed:
        params = {"job": job_id, "done": done, "failed": failed, "reused": reused, "now": now}
        row = session.execute(_COUNT, params).one_or_none()
        if row is None:
            return
        pending = row.total - row.done_count - row.failed_count
        if pending == 0 and row.state == JOB_QUEUED:
            finish_if_complete(session, job_id, now)
        elif pending > 0 and row.state == JOB_FINISHED:
            _reopen(session, job_id)


_NOW = bindparam("now", type_=JOBS.c.progressed_at.type)
_LATEST = case((JOBS.c.progressed_at.is_(None) | (JOBS.c.progressed_at < _NOW), _NOW), else_=JOBS.c.progressed_at)
# ``count``'s UPDATE, built once. RETURNING (PostgreSQL, SQLite 3.35+): the row as this update
# left it, locked until commit, so the end is decided without another statement for most batches.
_COUNT = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job"))
    .values(
        done_count=JOBS.c.done_count + bindparam("done"),
        failed_count=JOBS.c.failed_count + bindparam("failed"),
        reused_count=JOBS.c.reused_count + bindparam("reused"),
        progressed_at=_LATEST,
    )
    .returning(*COUNTED)
)


def finish_if_complete(session: Session, job_id: str, now: datetime) -> bool:
    """A queued job with nothing pending becomes finished; True when this call did it (a
    submitting job waits for the end of its input, a cancelled one stays cancelled). Its
    ``finished_at``: its last progress, or ``now`` if later (recording ended after the results)."""
    complete = JOBS.c.total == JOBS.c.done_count + JOBS.c.failed_count
    stmt = update(JOBS).where(JOBS.c.id == job_id, JOBS.c.state == JOB_QUEUED, complete)
    at = case((JOBS.c.progressed_at > now, JOBS.c.progressed_at), else_=now)
    if session.execute(stmt.values(state=JOB_FINISHED, finished_at=at)).rowcount != 1:
        return False
    events.finished(session, job_id, now)
    return True


def _reopen(session: Session, job_id: str) -> None:
    stmt = update(JOBS).where(JOBS.c.id == job_id, JOBS.c.state == JOB_FINISHED)
    session.execute(stmt.values(state=JOB_QUEUED, finished_at=None))


def cancel_job(session: Session, job_id: str, now: datetime | None = None) -> JobStatus:
    """Mark an open job cancelled (workers skip its batches); a finished or cancelled job is left
    as it is. A cancelled job keeps ``finished_at`` empty: it names when the last pending
    document got its result, which a cancelled job never has."""
    current = job_status(session, job_id)
    open_ = Job.state.in_((JOB_QUEUED, JOB_SUBMITTING))  # by compare-and-set: it may finish meanwhile
    if session.execute(update(Job).where(Job.id == job_id, open_).values(state=JOB_CANCELLED)).rowcount:
        current.state, current.eta_s = JOB_CANCELLED, None
        events.emit(session, job_id, [events.JOB_CANCELLED], now or utcnow())
    else:
        session.expire_all()
        current = job_status(session, job_id)
    return current


def _job_of(session: Session, ids: Collection[int]) -> str | None:
    """The job of a batch's documents (a batch has one job), by one primary-key probe."""
    return session.scalar(select(DOCUMENTS.c.job_id).where(DOCUMENTS.c.id == next(iter(ids)))) if ids else None


def _move(session: Session, ids: Collection[int], old: str, new: str, now: datetime, clear_error: bool = False) -> int:
    # By primary key only: with ``job_id = ?`` in the WHERE, PostgreSQL planned a walk of the
    # job's (job_id, status, id) index entries (49,744 rows filtered for 256 moved on a 50k job),
    # a cost that grew with the job. The ids are one job's (the worker read them for that job).
    dialect = bind_of(session).dialect.name
    stmt = _move_statement(dialect, old, new, clear_error)
    return session.execute(stmt, {"ids": values_for(dialect, list(ids)), "now": now}).rowcount


@lru_cache(maxsize=16)
def _move_statement(dialect: str, old: str, new: str, clear_error: bool):
    """``_move``'s UPDATE, built once (a batch runs it at least once)."""
    values = {
        "status": new,
        "updated_at": bindparam("now", type_=DOCUMENTS.c.updated_at.type),
        **({"error": None} if clear_error else {}),
    }
    return update(DOCUMENTS).where(any_of(dialect, DOCUMENTS.c.id, "ids"), DOCUMENTS.c.status == old).values(values)
