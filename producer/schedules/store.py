"""Schedules in the database: add (validated), find, list, pause/resume, remove, history.

Every input is checked at ``add`` so a mistake is one line now, not a failed run at 3 a.m.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lstmq.db.queries import status_counts
from lstmq.db.schema import DEFAULT_PRIORITY, DOC_DONE, DOC_FAILED, DOC_PENDING, Job, Schedule, ScheduleRun
from lstmq.dispatch.control import check_priority
from lstmq.errors import ScheduleError, ScheduleNotFound
from lstmq.producer.schedules.files import file_format, match_files
from lstmq.producer.schedules.roots import check_glob
from lstmq.producer.schedules.timing import Timing, check_name
from lstmq.producer.submit import check_model, check_task
from lstmq.readers.sources import FORMATS
from lstmq.settings import get_settings
from lstmq.webhooks.receivers import check_receivers


@dataclass(frozen=True)
class NewSchedule:
    name: str
    path: str
    task: str
    model: str
    timing: Timing
    format: str | None = None
    text_field: str = "text"
    id_field: str = "id"
    priority: str = DEFAULT_PRIORITY
    notify: tuple[str, ...] = ()  # webhook receivers of its runs' jobs
    reuse: bool = True  # False: its runs' jobs run the model on every document


def validate(new: NewSchedule) -> Schedule:
    """The row to insert, or a ScheduleError / ModelNotFound / InputError with one line."""
    check_name(new.name)
    check_task(new.task)
    if new.format is not None and new.format not in FORMATS:
        raise ScheduleError(f"unknown format {new.format!r} (expected {', '.join(FORMATS)})")
    pattern = os.path.abspath(os.path.expanduser(new.path))
    files = match_files(pattern)
    if not files:
        raise ScheduleError(
            f"--path {new.path!r} matches no file (a glob such as 'corpus/*.jsonl' or 'corpus/**/*.jsonl')"
        )
    check_glob(pattern, files)
    for path in files:
        file_format(path, new.format)  # InputError when the format cannot be told
    check_model(new.task, new.model)
    check_priority(new.priority)
    notify = check_receivers(new.notify, get_settings())
    return Schedule(
        name=new.name,
        path_glob=pattern,
        task=new.task,
        model=new.model,
        every_s=new.timing.every_s,
        cron=new.timing.cron,
        format=new.format,
        text_field=new.text_field,
        id_field=new.id_field,
        priority=new.priority,
        notify=notify,
        reuse=new.reuse,
    )


def add_schedule(session: Session, new: NewSchedule) -> Schedule:
    row = validate(new)
    if session.scalar(select(Schedule.id).where(Schedule.name == new.name)) is not None:
        raise ScheduleError(f"a schedule named {new.name!r} exists; remove it first or pick another name")
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ScheduleError(f"a schedule named {new.name!r} exists; remove it first or pick another name") from None
    return row


def get_schedule(session: Session, key: int | str) -> Schedule:
    column = Schedule.id if isinstance(key, int) else Schedule.name
    sched = session.scalar(select(Schedule).where(column == key))
    if sched is None:
        raise ScheduleNotFound(f"no schedule named {key!r} (see `lstmq schedule list`)")
    return sched


def timing_of(sched: Schedule) -> Timing:
    return Timing(every_s=sched.every_s, cron=sched.cron)


def list_schedules(session: Session) -> list[tuple[Schedule, ScheduleRun | None]]:
    """Every schedule with its latest run (or None)."""
    latest = (
        select(ScheduleRun.schedule_id, func.max(ScheduleRun.id).label("run_id"))
        .group_by(ScheduleRun.schedule_id)
        .subquery()
    )
    rows = session.execute(
        select(Schedule, ScheduleRun)
        .outerjoin(latest, latest.c.schedule_id == Schedule.id)
        .outerjoin(ScheduleRun, ScheduleRun.id == latest.c.run_id)
        .order_by(Schedule.name)
    ).all()
    return [(sched, run) for sched, run in rows]


def set_paused(session: Session, name: str, paused: bool) -> Schedule:
    sched = get_schedule(session, name)
    sched.paused = paused
    return sched


def remove_schedule(session: Session, name: str) -> None:
    """Drops the schedule, its cursors, ledger and run history; its jobs stay (unlinked)."""
    sched = get_schedule(session, name)
    session.execute(update(Job).where(Job.schedule_id == sched.id).values(schedule_id=None))
    session.delete(sched)


def history(session: Session, name: str, limit: int) -> tuple[Schedule, list[tuple[ScheduleRun, dict]]]:
    """The latest runs, newest first, each with its job's document counts by status."""
    sched = get_schedule(session, name)
    runs = session.scalars(
        select(ScheduleRun).where(ScheduleRun.schedule_id == sched.id).order_by(ScheduleRun.id.desc()).limit(limit)
    ).all()
    counts = status_counts(session, [run.job_id for run in runs if run.job_id])
    zero = {DOC_PENDING: 0, DOC_DONE: 0, DOC_FAILED: 0}
    return sched, [(run, {**zero, **counts[run.job_id]} if run.job_id else {}) for run in runs]
