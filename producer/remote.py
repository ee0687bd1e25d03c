"""``lstmq submit|status|results|jobs --api URL`` (or ``LSTMQ_API_URL``): the same commands
over the HTTP API through ``lstmq.Client``, with the same output on the same streams and the same
exit codes, built by ``lstmq.producer.output`` from what the API returns.

``with_api`` adds the option to the database-path commands of ``lstmq.producer.cli`` and leaves them
unchanged; ``lstmq.cli`` registers the wrapped ones. One input per submission (a file or
``-``): the API records one upload as one source.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import fields

import click

from lstmq import apischema
from lstmq.client import Client
from lstmq.db.queries import Health, JobStatus
from lstmq.db.schema import DOC_FAILED
from lstmq.dispatch.control import check_priority
from lstmq.errors import InputError
from lstmq.producer import cli as local
from lstmq.producer import output
from lstmq.producer.submit import check_task
from lstmq.readers.sources import STDIN_NAME, Source, resolve_sources

STATUS_FIELDS = {field.name for field in fields(JobStatus)}


def submit(
    client: Client,
    inputs,
    task,
    model,
    fmt,
    text_field,
    id_field,
    batch_size,
    wait,
    strict,
    priority,
    owner,
    notify,
    reuse,
) -> None:
    check_task(task)
    check_priority(priority)
    if not model:
        raise InputError("--model is required (see `lstmq models`)")
    if owner is not None:
        raise InputError("--owner does not apply with --api: a job submitted over the API belongs to its token")
    source = _one_source(inputs, fmt)
    created = client.submit(
        sys.stdin.buffer if source.path is None else source.path,
        model=model,
        task=task,
        format=source.format,
        text_field=text_field,
        id_field=id_field,
        batch_size=local._int_option(batch_size, "--batch-size"),
        strict=strict,
        priority=priority,
        notify=notify,
        reuse=reuse,
    )
    _print_rejected(client, source, created)
    click.echo(output.submitted_line(created.id, created.total, created.batches, created.rejected), err=True)
    click.echo(created.id)
    if wait:
        local._require_complete(follow(client, created.id))


def _one_source(inputs, fmt) -> Source:
    sources = resolve_sources(inputs, fmt)
    if len(sources) != 1 or sources[0].format == "folder":
        raise InputError("--api sends one input: a file or - for stdin (not a folder or several files)")
    return sources[0]


def _print_rejected(client: Client, source: Source, created: apischema.Submission) -> None:
    """Every rejected line on stderr, as `lstmq submit` prints them (the API keeps 10,000)."""
    lines = created.first_rejected
    if created.rejected > len(lines):
        lines = client.rejected(created.id).lines
    name = STDIN_NAME if source.path is None else source.name
    for bad in lines:
        click.echo(f"{name}:{bad.line}: {bad.reason}", err=True)


def status(client: Client, job_id, as_json, watch) -> None:
    if watch:
        follow(client, job_id)
    found = client.status(job_id)
    current, health = job_status(found), _health(found.health)
    click.echo(json.dumps(current.as_dict()) if as_json else output.describe(current, health))


def job_status(found: apischema.JobStatus | apischema.JobSummary) -> JobStatus:
    """The API's status object (or job list row) as the database path's ``JobStatus``. A list
    row has no rate or timestamps but its creation: ``print_jobs`` shows none of them."""
    missing = {"docs_per_s": None, "eta_s": None, "submitted_at": None, "finished_at": None}
    return JobStatus(**missing | found.model_dump(include=STATUS_FIELDS))


def _health(found: apischema.Health | None) -> Health | None:
    return None if found is None else Health(found.stalled_since, found.recoveries, found.recovered_at)


def results(client: Client, job_id, fmt, out, label, failed_only) -> None:
    local.check_results_output(fmt, out)
    task = client.status(job_id).task
    with client.results(job_id, label=label, status=DOC_FAILED if failed_only else None) as rows:
        # The row's own keys (image_path only for render jobs), in the database path's order;
        # Parquet is written here from the streamed rows, as from the database's.
        output.write_results((row.model_dump(exclude_unset=True) for row in rows), fmt, task=task, out=out)


def jobs(client: Client, as_json, limit) -> None:
    found = client.jobs(local._positive(local._int_option(limit, "--limit"), "--limit"))
    if as_json:
        click.echo(json.dumps([output.job_summary(job_status(job)) for job in found]))
    else:
        health = {job.id: _health(job.health) for job in found if job.health}
        output.print_jobs([job_status(job) for job in found], health)


def follow(client: Client, job_id: str, interval_s: float = output.POLL_INTERVAL_S) -> JobStatus:
    """As ``output.follow``, polling the API: a progress bar on stderr until the job ends."""
    return output.follow_status(lambda: job_status(client.status(job_id)), job_id, interval_s)


API_OPTION = click.Option(
    ["--api", "api_url"],
    metavar="URL",
    help="Ask the lstmq API at URL (default LSTMQ_API_URL; token in LSTMQ_API_TOKEN) instead of the database.",
)


def with_api(command: click.Command, remote: Callable[..., None]) -> click.Command:
    """``command`` plus ``--api``: with a URL (option or environment) ``remote`` runs instead."""

    def callback(api_url, **options):
        client = Client.from_env(api_url)
        return command.callback(**options) if client is None else remote(client, **options)

    return click.Command(
        command.name, callback=callback, params=[*command.params, API_OPTION], help=command.help, epilog=command.epilog
    )


submit_command = with_api(local.submit, submit)
status_command = with_api(local.status, status)
results_command = with_api(local.results, results)
jobs_command = with_api(local.jobs, jobs)
