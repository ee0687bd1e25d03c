"""Schedules over HTTP, with the rules of ``lstmq schedule``: list and history (read); add,
pause, resume and run now (admin). A run happens in the API process, as ``schedule run`` does
in the CLI's, and answers with what it queued."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lstmq.api import schemas
from lstmq.api.auth import admin_access, read_access
from lstmq.api.deps import CeleryDep, EngineDep
from lstmq.db.engine import session_scope
from lstmq.db.schema import DEFAULT_PRIORITY
from lstmq.producer.schedules.output import run_dict, schedule_dict
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.store import NewSchedule, add_schedule, get_schedule, history, list_schedules, set_paused
from lstmq.producer.schedules.timing import Timing

MAX_HISTORY_RUNS = 500
Name = Annotated[str, Path(max_length=64, description="A schedule name (`lstmq schedule list`).")]
api = APIRouter(tags=["schedules"])


class ScheduleIn(BaseModel):
    """The options of ``lstmq schedule add``; exactly one of ``every`` and ``cron``."""

    name: str = Field(max_length=64)
    path: str = Field(description="Glob of corpus files on the API's host, e.g. /input/news/*.jsonl.")
    model: str
    task: str = "classify"
    every: str | None = Field(None, description="Interval: 30s, 15m, 6h, 1d.")
    cron: str | None = Field(None, description="5-field crontab in UTC, e.g. '0 * * * *'.")
    format: str | None = None
    text_field: str = "text"
    id_field: str = "id"
    priority: str = Field(DEFAULT_PRIORITY, description="high, normal or low: the priority of its runs' jobs.")
    notify: list[str] = Field(
        default_factory=list, description="Webhook receivers (URLs) of its runs' jobs' events (as --notify)."
    )
    reuse: bool = Field(
        True,
        description="false: its runs' jobs run the model on every document, even where a result of the same text "
        "and model version exists (as --no-reuse).",
    )

    def new(self) -> NewSchedule:
        timing = Timing.parse(self.every, self.cron)
        fields = self.model_dump(exclude={"every", "cron"})
        return NewSchedule(timing=timing, **fields | {"notify": tuple(self.notify)})


@api.get(
    "/schedules",
    dependencies=[read_access],
    response_model=schemas.ScheduleList,
    summary="Schedules and their latest runs (as `schedule list --json`)",
)
def schedules(engine: EngineDep) -> dict:
    with session_scope(engine) as session:
        return {"schedules": [schedule_dict(sched, last) for sched, last in list_schedules(session)]}


@api.post(
    "/schedules",
    status_code=201,
    dependencies=[admin_access],
    response_model=schemas.Schedule,
    summary="Add a schedule (as `schedule add`)",
)
def add(body: ScheduleIn, engine: EngineDep) -> dict:
    new = body.new()
    with session_scope(engine) as session:
        return schedule_dict(add_schedule(session, new), None)


@api.post(
    "/schedules/{name}/pause",
    dependencies=[admin_access],
    response_model=schemas.Schedule,
    summary="Stop firing a schedule",
)
def pause(name: Name, engine: EngineDep) -> dict:
    return _paused(engine, name, True)


@api.post(
    "/schedules/{name}/resume",
    dependencies=[admin_access],
    response_model=schemas.Schedule,
    summary="Fire a schedule again",
)
def resume(name: Name, engine: EngineDep) -> dict:
    return _paused(engine, name, False)


def _paused(engine, name: str, paused: bool) -> dict:
    with session_scope(engine) as session:
        return schedule_dict(set_paused(session, name, paused), None)


@api.post(
    "/schedules/{name}/run",
    dependencies=[admin_access],
    response_model=schemas.ScheduleRunReport,
    summary="Run a schedule once, now (as `schedule run`)",
)
async def run(name: Name, engine: EngineDep, app: CeleryDep, reprocess: bool = False) -> dict:
    report = await run_in_threadpool(_run, engine, app, name, reprocess)
    scan = report.scan
    return (
        {"schedule": report.schedule, "state": report.state, "run": report.run_id, "error": report.error}
        | scan.counts()
        | {"problems": scan.problems}
    )


def _run(engine, app, name: str, reprocess: bool):
    with session_scope(engine) as session:
        sched_id = get_schedule(session, name).id
    return run_schedule(engine, app, sched_id, trigger="reprocess" if reprocess else "manual", reprocess=reprocess)


@api.get(
    "/schedules/{name}/history",
    dependencies=[read_access],
    response_model=schemas.ScheduleHistory,
    summary="A schedule's runs, newest first",
)
def runs(name: Name, engine: EngineDep, limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_RUNS)] = 20) -> dict:
    with session_scope(engine) as session:
        sched, found = history(session, name, limit)
        return {"schedule": schedule_dict(sched, None), "runs": [run_dict(run, docs) for run, docs in found]}
