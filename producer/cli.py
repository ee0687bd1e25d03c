"""``lstmq submit / status / results / jobs / cancel / requeue``: a thin layer over
``lstmq.producer.submit``, ``lstmq.sending`` and ``lstmq.db.queries``.

Options a user can get wrong are taken as plain strings and checked here, so every mistake
is one ``error: ...`` line (click's own usage errors span several lines).
"""

from __future__ import annotations

import json

import click

from lstmq.batching import batch_size_for
from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.queries import find_job, job_health, job_status, list_jobs, live_workers, result_rows
from lstmq.db.schema import DEFAULT_PRIORITY
from lstmq.db.transitions import cancel_job
from lstmq.dispatch.control import check_priority, set_priority, set_weight, weights
from lstmq.errors import InputError, JobIncomplete
from lstmq.parquet import pyarrow
from lstmq.producer import output
from lstmq.producer.submit import check_task, submit_records
from lstmq.queue import make_celery
from lstmq.readers.records import Fields
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.sending import requeue as requeue_job
from lstmq.settings import get_settings

RESULT_FORMATS = ("jsonl", "csv", "table", "parquet")


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--task", default="classify", show_default=True, metavar="TASK", help="classify or render")
@click.option("--model", metavar="NAME", help="Installed model name (see `lstmq models`).")
@click.option(
    "--format", "fmt", metavar="FORMAT", help="jsonl, csv or txt; default from the file extension (stdin: jsonl)."
)
@click.option(
    "--text-field", default="text", show_default=True, metavar="FIELD", help="JSON key or CSV column of the text."
)
@click.option(
    "--id-field", default="id", show_default=True, metavar="FIELD", help="JSON key or CSV column of the external id."
)
@click.option("--batch-size", metavar="N", help="Documents per message (default LSTMQ_BATCH_SIZE).")
@click.option("--wait", is_flag=True, help="Return when the job is finished; progress on stderr.")
@click.option("--strict", is_flag=True, help="Refuse the whole input if any record is bad.")
@click.option(
    "--priority",
    default=DEFAULT_PRIORITY,
    show_default=True,
    metavar="LEVEL",
    help="high, normal or low: higher priorities are served first, at batch boundaries.",
)
@click.option("--owner", metavar="NAME", help="Whose share of the workers the job uses [default: your user name].")
@click.option(
    "--notify",
    multiple=True,
    metavar="URL",
    help="A webhook receiver of the job's events (repeatable; needs LSTMQ_WEBHOOK_SECRET).",
)
@click.option(
    "--reuse/--no-reuse",
    default=True,
    show_default=True,
    help="Copy the result of a text already done with the same model version instead of running the model.",
)
def submit(
    inputs, task, model, fmt, text_field, id_field, batch_size, wait, strict, priority, owner, notify, reuse
) -> None:
    """Record INPUT... (JSONL, CSV, .txt files or folders, - for stdin; gzip or not) as a job
    and queue it. Prints the job id as the last line of stdout."""
    check_task(task)
    check_priority(priority)
    if not model:
        raise InputError("--model is required (see `lstmq models`)")
    size = batch_size_for(_int_option(batch_size, "--batch-size"), get_settings().batch_size)
    sources = resolve_sources(inputs, fmt)
    engine = ready_engine()
    items = read_sources(sources, Fields(text=text_field, id=id_field))
    report = submit_records(
        engine,
        make_celery(),
        items,
        task=task,
        model=model,
        batch_size=size,
        strict=strict,
        sources=[s.name for s in sources],
        priority=priority,
        owner=owner,
        notify=notify,
        reuse=reuse,
        on_reject=lambda bad: click.echo(str(bad), err=True),
    )
    click.echo(output.submitted_line(report.job_id, report.total, report.batches, report.rejected), err=True)
    click.echo(report.job_id)
    if wait:
        _require_complete(output.follow(engine, report.job_id))


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--watch", is_flag=True, help="Follow with a progress bar until the job is finished.")
def status(job_id, as_json, watch) -> None:
    """Counts, rate and ETA of a job (its id, or a unique prefix of 6+ characters)."""
    engine = ready_engine()
    job_id = _job_id(engine, job_id)
    if watch:
        current = output.follow(engine, job_id)
    settings = get_settings()
    with session_scope(engine) as session:
        current = job_status(session, job_id, heartbeat_s=settings.heartbeat_s)
        health = job_health(session, current, settings.stall_after_s)
    click.echo(json.dumps(current.as_dict()) if as_json else output.describe(current, health))


@click.command()
@click.argument("job_id")
@click.option(
    "--format", "fmt", default="jsonl", show_default=True, metavar="FORMAT", help="jsonl, csv, table or parquet."
)
@click.option("-o", "--output", "out", metavar="FILE", help="Write to FILE (required for parquet).")
@click.option("--label", metavar="LABEL", help="Only documents classified as LABEL.")
@click.option("--failed", "failed_only", is_flag=True, help="Only failed documents.")
def results(job_id, fmt, out, label, failed_only) -> None:
    """One row per document: id, label, score, model, model_version, status, error (and
    image_path for render jobs). Parquet keeps the columns, typed: score is a float."""
    check_results_output(fmt, out)
    engine = ready_engine()
    with session_scope(engine) as session:
        job = find_job(session, job_id)
        rows = result_rows(session, job, label=label, failed_only=failed_only)
        output.write_results(rows, fmt, task=job.task, out=out)


def check_results_output(fmt: str, out: str | None) -> None:
    """Refused before anything is read: an unknown format, parquet without -o (binary does not
    go to a terminal or a pipe), -o with a text format (they write to stdout), or no pyarrow."""
    if fmt not in RESULT_FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected {', '.join(RESULT_FORMATS)})")
    if fmt == "parquet":
        if not out or out == "-":
            raise InputError("--format parquet writes a file: give -o FILE")
        pyarrow()
    elif out is not None:
        raise InputError(f"-o FILE is for --format parquet; {fmt} goes to stdout (redirect it with >)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@click.option("--limit", default="50", show_default=True, metavar="N", help="How many recent jobs.")
def jobs(as_json, limit) -> None:
    """Recent jobs, newest first."""
    engine = ready_engine()
    stall_after_s = get_settings().stall_after_s
    with session_scope(engine) as session:
        found = list_jobs(session, limit=_positive(_int_option(limit, "--limit"), "--limit"))
        health = {job.id: job_health(session, job, stall_after_s) for job in found}
    if as_json:
        click.echo(json.dumps([output.job_summary(job) for job in found]))
    else:
        output.print_jobs(found, {job_id: h for job_id, h in health.items() if h})


@click.command()
def workers() -> None:
    """Live workers: queues, models loaded, device, last heartbeat, current batches."""
    with session_scope(ready_engine()) as session:
        found = live_workers(session, get_settings().heartbeat_s)
    if not found:
        click.echo("no live worker (start one with `lstmq worker`)", err=True)
        return
    output.print_workers(found)


@click.command()
@click.argument("job_id")
def cancel(job_id) -> None:
    """Stop a job: workers skip its batches; pending documents stay pending."""
    with session_scope(ready_engine()) as session:
        job_id = find_job(session, job_id).id
        current = cancel_job(session, job_id)
    click.echo(f"job {job_id} {current.state}; {output.count(current.pending, 'document')} pending")


@click.command()
@click.argument("job_id")
@click.option("--batch-size", metavar="N", help="Documents per message from now on (default: the job's).")
@click.option("--failed", is_flag=True, help="Failed documents too (after their cause is fixed).")
def requeue(job_id, batch_size, failed) -> None:
    """Send again every document of JOB without a result (safe to repeat): the dispatcher sends
    them in the job's turn."""
    size = _int_option(batch_size, "--batch-size")
    if size is not None:
        batch_size_for(size, get_settings().batch_size)  # refused here when out of range
    engine = ready_engine()
    job_id = _job_id(engine, job_id)
    pending = requeue_job(engine, job_id, size, failed=failed)
    click.echo(f"job {job_id}: {output.count(pending, 'pending document')} queued again")


@click.group()
def job() -> None:
    """Change a job: its priority."""


@job.command("priority")
@click.argument("job_id")
@click.argument("level")
def job_priority(job_id, level) -> None:
    """Set JOB's priority to LEVEL (high, normal or low), from its next batch on."""
    check_priority(level)
    with session_scope(ready_engine()) as session:
        job_id = find_job(session, job_id).id
        set_priority(session, job_id, level)
    click.echo(f"job {job_id}: priority {level}")


@click.group()
def owner() -> None:
    """Owners share the workers within a priority by weight (default 1)."""


@owner.command("weight")
@click.argument("name")
@click.argument("weight")
def owner_weight(name, weight) -> None:
    """Set owner NAME's WEIGHT: an owner of weight 3 gets three times the batches of one of weight 1
    while both wait. An API token's owner is its name; a CLI user's, the user name or --owner."""
    value = _int_option(weight, "WEIGHT")
    with session_scope(ready_engine()) as session:
        set_weight(session, name, value)
    click.echo(f"owner {name}: weight {value}")


@owner.command("list")
def owner_list() -> None:
    """Owners whose weight was set (every other owner has weight 1)."""
    with session_scope(ready_engine()) as session:
        for name, value in weights(session).items():
            click.echo(f"{name}\t{value}")


def _job_id(engine, text: str) -> str:
    with session_scope(engine) as session:
        return find_job(session, text).id


def _int_option(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise InputError(f"{name} must be at least 1, got {value}")
    return value


def _require_complete(final) -> None:
    if final.failed or final.state != "finished":
        raise JobIncomplete(
            f"job {final.id} {final.state} with {final.failed} failed and {final.pending} pending "
            f"documents (see `lstmq results {final.id} --failed`)"
        )
