"""Jobs: list (newest first, keyset pages), status (the ``lstmq status --json`` object),
rejected lines, cancel and requeue (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from lstmq.api import schemas
from lstmq.api.auth import admin_access, read_access
from lstmq.api.deps import EngineDep
from lstmq.api.rejections import MAX_STORED_REJECTIONS, stored_rejections
from lstmq.contract import MAX_BATCH_DOCS
from lstmq.db.engine import session_scope
from lstmq.db.queries import JOB_FINISHED, JobStatus, get_job, health_dict, job_status
from lstmq.db.schema import JOB_CANCELLED, JOB_QUEUED, JOB_SUBMITTING, PRIORITIES, Job, Schedule
from lstmq.db.transitions import cancel_job
from lstmq.dispatch.control import set_priority
from lstmq.producer.output import job_summary
from lstmq.sending import requeue
from lstmq.settings import get_settings

MAX_PAGE_JOBS = 500
JobId = Annotated[str, Path(max_length=64, description="A job id (`lstmq jobs`).")]
# A job's state as `lstmq status` shows it: the stored one.
STATE_FILTERS = {state: Job.state == state for state in (JOB_SUBMITTING, JOB_QUEUED, JOB_FINISHED, JOB_CANCELLED)}
STATES = tuple(STATE_FILTERS)
api = APIRouter(tags=["jobs"])


@api.get(
    "/jobs",
    dependencies=[read_access],
    response_model=schemas.JobPage,
    summary="Jobs, newest first (as `lstmq jobs --json`)",
)
def list_jobs(
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_JOBS)] = 50,
    before: Annotated[str | None, Query(max_length=64, description="The `next` of the previous page.")] = None,
    state: Literal[STATES] | None = None,
    schedule: Annotated[str | None, Query(description="Only jobs started by this schedule.")] = None,
) -> dict:
    with session_scope(engine) as session:
        page, after = jobs_page(session, limit, before, state, schedule)
        return {"jobs": [job_summary(job) | {"health": health_of(session, job)} for job in page], "next": after}


def jobs_page(
    session: Session, limit: int, before: str | None = None, state: str | None = None, schedule: str | None = None
) -> tuple[list[JobStatus], str | None]:
    """One page of jobs, newest first, and the ``before`` of the next page (None at the end)."""
    stmt = _filtered(session, before, state, schedule).order_by(Job.created_at.desc(), Job.id.desc())
    ids = list(session.scalars(stmt.limit(limit + 1)))
    return [job_status(session, job_id) for job_id in ids[:limit]], ids[limit - 1] if len(ids) > limit else None


def _filtered(session: Session, before: str | None, state: str | None, schedule: str | None):
    stmt = select(Job.id)
    if before is not None:
        last = get_job(session, before)
        stmt = stmt.where(
            or_(Job.created_at < last.created_at, and_(Job.created_at == last.created_at, Job.id < last.id))
        )
    if state is not None:
        stmt = stmt.where(STATE_FILTERS[state])
    if schedule is not None:
        stmt = stmt.join(Schedule, Schedule.id == Job.schedule_id).where(Schedule.name == schedule)
    return stmt


@api.get(
    "/jobs/{job_id}",
    dependencies=[read_access],
    response_model=schemas.Job,
    summary="Counts, rate and ETA (as `lstmq status --json`), and `health` when stalled",
)
def get_status(job_id: JobId, engine: EngineDep) -> dict:
    with session_scope(engine) as session:
        current = job_status(session, job_id, heartbeat_s=get_settings().heartbeat_s)
        return current.as_dict() | {"health": health_of(session, current)}


def health_of(session: Session, status: JobStatus) -> dict | None:
    """Since when a job is stalled and its re-sends (``lstmq status`` prints it), else None."""
    return health_dict(session, status, get_settings().stall_after_s)


@api.get(
    "/jobs/{job_id}/rejected",
    dependencies=[read_access],
    response_model=schemas.Rejections,
    summary="Rejected lines of an API submission",
)
def rejected(job_id: JobId, engine: EngineDep) -> dict:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        lines = stored_rejections(session, job_id)
    return {"id": job_id, "rejected": job.rejected, "stored_limit": MAX_STORED_REJECTIONS, "lines": lines}


@api.post(
    "/jobs/{job_id}/cancel",
    dependencies=[admin_access],
    response_model=schemas.JobStatus,
    summary="Stop a job (as `lstmq cancel`)",
)
def cancel(job_id: JobId, engine: EngineDep) -> dict:
    with session_scope(engine) as session:
        return cancel_job(session, job_id).as_dict()


@api.post(
    "/jobs/{job_id}/priority",
    dependencies=[admin_access],
    response_model=schemas.JobStatus,
    summary="Change a job's priority (as `lstmq job priority`)",
)
def change_priority(
    job_id: JobId,
    engine: EngineDep,
    priority: Annotated[Literal[PRIORITIES], Query(description="high, normal or low, from its next batch on.")],
) -> dict:
    with session_scope(engine) as session:
        set_priority(session, job_id, priority)
        return job_status(session, job_id).as_dict()


@api.post(
    "/jobs/{job_id}/requeue",
    dependencies=[admin_access],
    response_model=schemas.Requeued,
    summary="Send again what has no result",
)
def requeue_job(
    job_id: JobId,
    engine: EngineDep,
    batch_size: Annotated[int | None, Query(ge=1, le=MAX_BATCH_DOCS, description="Its batches from now on.")] = None,
) -> dict:
    pending = requeue(engine, job_id, batch_size)
    return {"id": job_id, "docs": pending}
