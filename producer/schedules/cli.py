"""``lstmq schedule ...`` (definitions in the database) and ``lstmq scheduler`` (the process).

A thin layer over ``lstmq.producer.schedules.store``, ``lstmq.producer.schedules.run`` and ``lstmq.producer.schedules.beat``.
Options a user can get wrong are plain strings checked by those modules: one ``error:`` line.
"""

from __future__ import annotations

import json
import os
import socket

import click

from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.schema import DEFAULT_PRIORITY
from lstmq.errors import ConfigError, InputError, RunFailed
from lstmq.producer.schedules import output as show
from lstmq.producer.schedules.run import FAILED, run_schedule
from lstmq.producer.schedules.store import (
    NewSchedule,
    add_schedule,
    get_schedule,
    history,
    list_schedules,
    remove_schedule,
    set_paused,
)
from lstmq.producer.schedules.timing import Timing
from lstmq.queue import make_celery, ping_broker
from lstmq.settings import get_settings, mask_url

REDIS_SCHEMES = ("redis://", "rediss://")


@click.group()
def schedule() -> None:
    """Corpora re-scanned on a schedule; each run queues only what is new."""


@schedule.command("add")
@click.argument("name")
@click.option("--path", "path", required=True, help="Glob of corpus files, e.g. 'dumps/*.jsonl' ('**' recurses).")
@click.option("--task", default="classify", show_default=True, help="classify or render")
@click.option("--model", required=True, help="Installed model name (see `lstmq models`).")
@click.option("--every", help="Interval: 30s, 15m, 6h, 1d.")
@click.option("--cron", help="5-field crontab in UTC, e.g. '0 * * * *'.")
@click.option("--format", "fmt", help="jsonl, csv or txt; default from each file's extension.")
@click.option("--text-field", default="text", show_default=True, help="JSON key or CSV column of the text.")
@click.option(
    "--id-field",
    default="id",
    show_default=True,
    help="JSON key or CSV column of a document id (unique across the corpus); without one a "
    "document is known by its text's hash.",
)
@click.option(
    "--priority",
    default=DEFAULT_PRIORITY,
    show_default=True,
    help="high, normal or low: the priority of its runs' jobs.",
)
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="A webhook receiver of its runs' jobs' events (repeatable; needs LSTMQ_WEBHOOK_SECRET).",
)
@click.option(
    "--reuse/--no-reuse",
    default=True,
    show_default=True,
    help="Its runs copy the result of a text already done with the same model version instead of running the model.",
)
def add(name, path, task, model, every, cron, fmt, text_field, id_field, priority, notify, reuse) -> None:
    """Add schedule NAME; files are checked now, read by `lstmq scheduler` (or `schedule run`)."""
    new = NewSchedule(
        name=name,
        path=path,
        task=task,
        model=model,
        timing=Timing.parse(every, cron),
        format=fmt,
        text_field=text_field,
        id_field=id_field,
        priority=priority,
        notify=tuple(notify),
        reuse=reuse,
    )
    with session_scope(ready_engine()) as session:
        row = add_schedule(session, new)
    click.echo(f"schedule {row.name}: {row.task} with {row.model}, {new.timing.describe()}, files {row.path_glob}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
def list_(as_json) -> None:
    """Every schedule, its timing, state and latest run."""
    with session_scope(ready_engine()) as session:
        rows = list_schedules(session)
        if as_json:
            click.echo(json.dumps([show.schedule_dict(s, run) for s, run in rows]))
        else:
            show.print_schedules(rows)


@schedule.command("remove")
@click.argument("name")
def remove(name) -> None:
    """Delete NAME with its cursors and history; its jobs and results stay."""
    with session_scope(ready_engine()) as session:
        remove_schedule(session, name)
    click.echo(f"schedule {name} removed")


@schedule.command("pause")
@click.argument("name")
def pause(name) -> None:
    """Stop firing NAME (``schedule run`` still works)."""
    _set_paused(name, True)


@schedule.command("resume")
@click.argument("name")
def resume(name) -> None:
    """Fire NAME again; a run missed while paused happens once, at once."""
    _set_paused(name, False)


def _set_paused(name: str, paused: bool) -> None:
    with session_scope(ready_engine()) as session:
        set_paused(session, name, paused)
    click.echo(f"schedule {name} {'paused' if paused else 'resumed'}")


@schedule.command("run")
@click.argument("name")
@click.option(
    "--reprocess",
    is_flag=True,
    help="Read every file again and queue documents not yet processed by the current model version.",
)
def run(name, reprocess) -> None:
    """Run NAME once, now, in this process; prints what it queued."""
    engine = ready_engine()
    with session_scope(engine) as session:
        sched_id = get_schedule(session, name).id
    app = make_celery()
    ping_broker(app)
    report = run_schedule(engine, app, sched_id, trigger="reprocess" if reprocess else "manual", reprocess=reprocess)
    click.echo(show.run_line(report))
    if report.state == FAILED:
        raise RunFailed(f"run of {name} failed: {report.error}")


@schedule.command("history")
@click.argument("name")
@click.option("--limit", default="20", show_default=True, help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, newest run first.")
def history_(name, limit, as_json) -> None:
    """NAME's runs, newest first: files read, documents queued/skipped/rejected, problems, job."""
    count = _positive_int(limit, "--limit")
    with session_scope(ready_engine()) as session:
        sched, runs = history(session, name, count)
        if as_json:
            click.echo(json.dumps([show.run_dict(run, docs) for run, docs in runs]))
        else:
            show.print_history(sched, runs)


@click.command()
@click.option(
    "--loglevel",
    "-l",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def scheduler(loglevel) -> None:
    """Fire schedules (Celery beat + RedBeat lock: safe to start several) and run them."""
    # Only this command runs beat: RedBeat, redis and Celery's beat and bootsteps (~100
    # modules, ~0.2 s) stay out of every other `lstmq schedule` command.
    from lstmq.producer.schedules.beat import SCHEDULE_QUEUE, make_scheduler_app

    settings = get_settings()
    if not settings.broker.startswith(REDIS_SCHEMES):
        raise ConfigError(
            f"lstmq scheduler needs Redis (LSTMQ_BROKER_URL=redis://...), not {mask_url(settings.broker)}: "
            "its lock and entries live there; without Redis call `lstmq schedule run NAME` from cron"
        )
    ready_engine(settings).dispose()
    app = make_scheduler_app(settings)
    ping_broker(app)
    worker = app.Worker(
        queues=[SCHEDULE_QUEUE],
        pool="solo",
        concurrency=1,
        loglevel=loglevel.upper(),
        hostname=f"scheduler-{os.getpid()}@{socket.gethostname()}",
        without_gossip=True,
        without_mingle=True,
    )
    worker.start()
    raise SystemExit(worker.exitcode or 0)


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if number < 1:
        raise InputError(f"{name} must be at least 1, got {number}")
    return number
