"""How the schedule commands show things: one line per item for people, JSON for scripts."""

from __future__ import annotations

from datetime import datetime

import click

from lstmq.db.schema import Schedule, ScheduleRun, as_utc
from lstmq.producer.schedules.store import timing_of

PROBLEMS_SHOWN = 5  # per run in the table; --json has them all


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None


def _short(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def schedule_dict(sched: Schedule, last: ScheduleRun | None) -> dict:
    return {
        "name": sched.name,
        "path": sched.path_glob,
        "task": sched.task,
        "model": sched.model,
        "every_s": sched.every_s,
        "cron": sched.cron,
        "format": sched.format,
        "text_field": sched.text_field,
        "id_field": sched.id_field,
        "priority": sched.priority,
        "paused": sched.paused,
        "reuse": sched.reuse,
        "created_at": _iso(sched.created_at),
        "last_run": run_dict(last, {}) if last else None,
    }


def print_schedules(rows: list[tuple[Schedule, ScheduleRun | None]]) -> None:
    if not rows:
        click.echo("no schedules (add one with `lstmq schedule add`)")
    for sched, last in rows:
        latest = f"last run {_short(last.started_at)} {last.state}, {last.queued} queued" if last else "never run"
        click.echo(
            f"{sched.name}  {'paused' if sched.paused else 'active'}  {sched.task} {sched.model}  "
            f"{timing_of(sched).describe()}  {sched.path_glob}  ({latest})"
        )


def run_dict(run: ScheduleRun, docs: dict) -> dict:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "state": run.state,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "files": run.files,
        "files_read": run.files_read,
        "queued": run.queued,
        "skipped": run.skipped,
        "rejected": run.rejected,
        "job": run.job_id,
        "documents": docs or None,
        "problems": list(run.problems or []),
    }


def run_line(report) -> str:
    scan = report.scan
    line = (
        f"schedule {report.schedule}: run {report.state}; {scan.files} files ({scan.files_read} read), "
        f"{scan.queued} queued, {scan.skipped} already processed, {scan.rejected} rejected"
    )
    if report.job_id:
        line += f"; job {report.job_id}"
    if report.state == "skipped":
        line += " (another run of this schedule is in progress)"
    return line


def print_history(sched: Schedule, runs: list[tuple[ScheduleRun, dict]]) -> None:
    click.echo(f"schedule {sched.name}: {sched.task} {sched.model}, {timing_of(sched).describe()}, {sched.path_glob}")
    for run, docs in runs:
        click.echo(
            f"run {run.id}  {_short(run.started_at)}  {run.trigger:<9} {run.state:<7} "
            f"files {run.files_read}/{run.files} read  queued {run.queued}  skipped {run.skipped}  "
            f"rejected {run.rejected}"
        )
        if run.job_id:
            click.echo(
                f"  job {run.job_id}: done {docs.get('done', 0)}  pending {docs.get('pending', 0)}  "
                f"failed {docs.get('failed', 0)}"
            )
        problems = list(run.problems or [])
        for problem in problems[:PROBLEMS_SHOWN]:
            click.echo(f"  ! {problem}")
        if len(problems) > PROBLEMS_SHOWN:
            click.echo(f"  ! ... {len(problems) - PROBLEMS_SHOWN} more (see --json)")
