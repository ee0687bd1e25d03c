"""Questions about jobs, asked in SQLAlchemy 2.0 with bound parameters; callers own sessions.

A job's counts are the counters its row keeps (``lstmq.db.transitions`` moves them with every
status change), so reading a job costs the same at a million documents as at ten;
``status_counts`` counts the documents themselves. A job's state is the stored one
(submitting, queued, finished, cancelled): the transaction that gives a job's last pending
document its result stores ``finished`` and ``finished_at``; reading a job never writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Connection, LargeBinary, and_, bindparam, cast, func, select
from sqlalchemy.orm import Session

from lstmq.contract import QUEUES
from lstmq.db.dialects import bind_of
from lstmq.db.schema import (
    DEFAULT_PRIORITY,
    DOC_FAILED,
    DOC_PENDING,
    JOB_CANCELLED,
    JOB_FINISHED,
    JOB_QUEUED,
    JOB_SUBMITTING,
    PRIORITIES,
    RECORDING,
    Batch,
    Classification,
    Document,
    Image,
    Job,
    Schedule,
    WorkerBeat,
    as_utc,
    utcnow,
)
from lstmq.errors import InputError, JobNotFound

CANCELLED_NOTE = "cancelled"  # jobs.options key: why lstmq cancelled the job
RESULT_COLUMNS = ("id", "label", "score", "model", "model_version", "status", "error")  # of result_rows
RENDER_COLUMNS = (*RESULT_COLUMNS, "image_path")
RESULTS_YIELD_ROWS = 1000  # rows fetched per round trip when streaming results
MIN_ELAPSED_S = 1.0  # rates over less than this are noise
LIVE_BEATS = 3  # a worker is live while its last beat is younger than this many heartbeats
HAS_PENDING = Job.total > Job.done_count + Job.failed_count  # SQL: a document is pending, by the counters
IS_FINISHED = Job.state == JOB_FINISHED  # stored by the transaction that moved its last document


@dataclass
class JobStatus:
    id: str
    state: str
    task: str
    model: str
    total: int
    done: int
    reused: int  # of the done ones, those whose result was copied from another document's
    failed: int
    pending: int
    rejected: int
    docs_per_s: float | None
    eta_s: float | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    schedule: str | None  # name of the schedule that started the job, if any
    note: str | None = None  # why the job was stopped, when lstmq stopped it (e.g. its submit died)
    priority: str = DEFAULT_PRIORITY
    owner: str = ""
    in_flight: int = 0  # its batches sent and not yet finished
    waiting: str | None = None  # what an open job with nothing in flight waits for (job_status only)

    @property
    def finished(self) -> bool:
        return self.state == JOB_FINISHED

    def as_dict(self) -> dict:
        out = asdict(self)
        for key in ("created_at", "submitted_at", "finished_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass
class Health:
    """A job with pending documents and no progress for longer than the stall time."""

    stalled_since: datetime  # its last result (or its submission)
    recoveries: int  # re-sends by the reconciler since then
    recovered_at: datetime | None

    @property
    def recovering(self) -> bool:
        return self.recovered_at is not None and self.recovered_at >= self.stalled_since


MIN_JOB_PREFIX = 6
_HEX = frozenset("0123456789abcdef")


def find_job(session: Session, text: str) -> Job:
    """The job ``text`` names: its whole id, or a unique prefix of at least ``MIN_JOB_PREFIX``
    characters (progress lines show the first 8), as git takes a short commit id."""
    if (job := session.get(Job, text)) is not None:
        return job
    if len(text) >= MIN_JOB_PREFIX and set(text) <= _HEX:  # hex only: no LIKE wildcard gets in
        found = session.scalars(select(Job).where(Job.id.startswith(text)).order_by(Job.id).limit(3)).all()
        if len(found) == 1:
            return found[0]
        if found:
            shown = ", ".join(job.id for job in found[:2]) + (", ..." if len(found) > 2 else "")
            raise JobNotFound(f"job id prefix {text!r} matches several jobs ({shown}): give more of it")
    raise JobNotFound(f"no job {text!r}")


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id!r}")
    return job


def status_counts(session: Session, job_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """{job_id: {status: count}} for the given jobs, counted from their documents (a scan of
    each job's index entries: for checks and small jobs, not for polling)."""
    stmt = (
        select(Document.job_id, Document.status, func.count())
        .where(Document.job_id.in_(job_ids))
        .group_by(Document.job_id, Document.status)
    )
    counts: dict[str, dict[str, int]] = {job_id: {} for job_id in job_ids}
    for job_id, status, n in session.execute(stmt):
        counts[job_id][status] = n
    return counts


def job_status(session: Session, job_id: str, now: datetime | None = None, heartbeat_s: int | None = None) -> JobStatus:
    """The job's state and counts; for an open job also its batches in flight and, with none in
    flight, what it waits for (``heartbeat_s``: how live workers are told, for "a worker")."""
    job = get_job(session, job_id)
    status = _status(session, job, now)
    if status.state in (JOB_QUEUED, JOB_SUBMITTING) and status.pending:
        status.in_flight = session.scalar(select(func.count()).where(Batch.job_id == job.id))
        if not status.in_flight:
            status.waiting = waiting_for(session, job, heartbeat_s)
    return status


def waiting_for(session: Session, job: Job, heartbeat_s: int | None) -> str:
    """Why an open job has no batch in flight, in a few words."""
    higher = PRIORITIES[: PRIORITIES.index(job.priority)] if job.priority in PRIORITIES else PRIORITIES
    if higher:
        ahead = session.scalar(
            select(func.count()).where(
                Job.task == job.task,
                Job.state.in_((JOB_QUEUED, JOB_SUBMITTING)),
                Job.priority.in_(higher),
                HAS_PENDING,
            )
        )
        if ahead:
            return f"{ahead:,} higher-priority job{'s' if ahead != 1 else ''}"
    if heartbeat_s is not None:
        queue = QUEUES.get(job.task)
        if not any(queue in worker.queues for worker in live_workers(session, heartbeat_s)):
            return "a worker"
    if (job.options or {}).get(RECORDING):
        return "a full batch of its input"
    return "its turn (other jobs of its priority share the workers)"


def list_jobs(session: Session, limit: int = 50) -> list[JobStatus]:
    """The most recent jobs first."""
    jobs = session.scalars(select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)).all()
    return [_status(session, job) for job in jobs]


def _status(session: Session, job: Job, now: datetime | None = None) -> JobStatus:
    done, failed = job.done_count, job.failed_count
    pending = job.total - done - failed
    state = job.state
    started = as_utc(job.submitted_at or job.created_at)
    until = as_utc(job.finished_at) if job.finished_at else (now or utcnow())
    rate = (done + failed) / max((until - started).total_seconds(), MIN_ELAPSED_S) if done + failed else None
    eta = 0.0 if state == JOB_FINISHED else (pending / rate if rate and state != JOB_CANCELLED else None)
    return JobStatus(
        id=job.id,
        state=state,
        task=job.task,
        model=job.model,
        total=job.total,
        done=done,
        reused=job.reused_count,
        failed=failed,
        pending=pending,
        rejected=job.rejected,
        docs_per_s=rate,
        eta_s=eta,
        created_at=as_utc(job.created_at),
        submitted_at=as_utc(job.submitted_at),
        finished_at=as_utc(job.finished_at),
        schedule=_schedule_name(session, job.schedule_id),
        note=(job.options or {}).get(CANCELLED_NOTE),
        priority=job.priority,
        owner=job.owner,
    )


def _schedule_name(session: Session, schedule_id: int | None) -> str | None:
    # session.get: one query per schedule per session (identity map), none for plain jobs.
    schedule = session.get(Schedule, schedule_id) if schedule_id is not None else None
    return schedule.name if schedule else None


def job_health(session: Session, status: JobStatus, stall_after_s: int, now: datetime | None = None) -> Health | None:
    """How a job is stalled, or None when it is not (finished, cancelled, progressing, or waiting
    for its turn: a job with nothing in flight that lstmq never had to recover is waiting)."""
    if status.state not in (JOB_QUEUED, JOB_SUBMITTING) or status.pending == 0:
        return None
    job = get_job(session, status.id)
    since = max(as_utc(m) for m in (job.progressed_at, job.submitted_at, job.created_at) if m)
    if ((now or utcnow()) - since).total_seconds() < stall_after_s:
        return None
    recovered = job.recovered_at is not None and as_utc(job.recovered_at) >= since
    if not recovered and not session.scalar(select(func.count()).where(Batch.job_id == job.id)):
        return None
    return Health(since, job.recoveries, as_utc(job.recovered_at))


def health_dict(session: Session, status: JobStatus, stall_after_s: int) -> dict | None:
    """Since when a job is stalled and its re-sends (``lstmq status`` prints it), else None."""
    found = job_health(session, status, stall_after_s)
    if found is None:
        return None
    stamps = {key: getattr(found, key) for key in ("stalled_since", "recovered_at")}
    return {"recoveries": found.recoveries} | {key: v.isoformat() if v else None for key, v in stamps.items()}


def job_object(session: Session, job_id: str, heartbeat_s: int, stall_after_s: int) -> dict:
    """The job as GET /api/v1/jobs/{id} answers it: its status and ``health``."""
    current = job_status(session, job_id, heartbeat_s=heartbeat_s)
    return current.as_dict() | {"health": health_dict(session, current, stall_after_s)}


def live_workers(session: Session, heartbeat_s: int, now: datetime | None = None) -> list[WorkerBeat]:
    """Workers whose last beat is recent, by name; a dead worker's row simply ages out."""
    oldest = (now or utcnow()) - timedelta(seconds=heartbeat_s * LIVE_BEATS)
    rows = session.scalars(select(WorkerBeat).order_by(WorkerBeat.name, WorkerBeat.pid)).all()
    return [row for row in rows if as_utc(row.beat_at) >= oldest]


# Built once: the dispatcher reads a page for every batch it makes, and building a statement
# costs SQLAlchemy more than the page costs PostgreSQL.
def pending_page(db: Session | Connection, job_id: str, after_id: int, limit: int) -> list:
    """Up to ``limit`` pending documents with id > ``after_id``, in id order (keyset paging,
    so each page is a short transaction): their ids, content hashes (result reuse looks them
    up) and the UTF-8 bytes of their texts (``size``: a batch bounds what its worker reads)."""
    stmt = _pending_page(bind_of(db).dialect.name)
    return db.execute(stmt, {"job": job_id, "after": after_id, "size": limit}).all()


@lru_cache(maxsize=4)
def _pending_page(dialect: str):
    """``pending_page``'s statement, built once per dialect. PostgreSQL's ``octet_length`` takes
    a stored text's size from its header; SQLite has it only from 3.43 on."""
    if dialect == "postgresql":
        size = func.octet_length(Document.text)
    else:
        size = func.length(cast(Document.text, LargeBinary))
    return (
        select(Document.id, Document.content_hash, size.label("size"))
        .where(Document.job_id == bindparam("job"), Document.status == DOC_PENDING, Document.id > bindparam("after"))
        .order_by(Document.id)
        .limit(bindparam("size"))
    )


def result_rows(session: Session, job: Job, label: str | None = None, failed_only: bool = False) -> Iterator[dict]:
    """One row per document of ``job``, streamed; where a document has results from several
    versions of the model, the most recently written one."""
    result = Classification if job.task == "classify" else Image
    if label is not None and result is not Classification:
        raise InputError(f"--label applies to classify jobs; job {job.id} is a {job.task} job")
    stmt = (
        select(Document.id, Document.external_id, Document.status, Document.error, *_result_columns(result))
        .outerjoin(result, and_(result.document_id == Document.id, result.model == job.model))
        .where(Document.job_id == job.id)
        .order_by(Document.id, result.updated_at.desc())
    )
    if failed_only:
        stmt = stmt.where(Document.status == DOC_FAILED)
    if label is not None:
        stmt = stmt.where(Classification.label == label)
    last_id = None
    for row in session.execute(stmt.execution_options(yield_per=RESULTS_YIELD_ROWS)):
        if row.id != last_id:
            last_id = row.id
            yield _result_dict(row, job)


def _result_columns(result) -> list:
    if result is Classification:
        return [Classification.label, Classification.score, Classification.model_version]
    return [Image.path.label("image_path"), Image.model_version]


def _result_dict(row, job: Job) -> dict:
    values = row._mapping
    out = {
        "id": row.external_id,
        "label": values.get("label"),
        "score": values.get("score"),
        "model": job.model,
        "model_version": row.model_version,
        "status": row.status,
        "error": row.error,
    }
    if job.task == "render":
        out["image_path"] = row.image_path
    return out
