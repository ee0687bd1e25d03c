"""``lstmq submit|status|results|jobs --api URL`` (or ``LSTMQ_API_URL``): the same commands
over the HTTP API, with the same output on the same streams and the same exit codes, built by
``lstmq.producer.output`` from what the API returns.

``with_api`` adds the option to the database-path commands of ``lstmq.producer.cli`` and leaves them
unchanged; ``lstmq.cli`` registers the wrapped ones. One input per submission (a file or
``-``): the API records one upload as one source.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import click

from lstmq.db.queries import Health, JobStatus
from lstmq.db.schema import DOC_FAILED
from lstmq.dispatch.control import check_priority
from lstmq.errors import InputError
from lstmq.producer import cli as local
from lstmq.producer import output
from lstmq.producer.client import ApiClient
from lstmq.producer.submit import check_task
from lstmq.readers.sources import STDIN_NAME, Source, resolve_sources

JOBS = "/api/v1/jobs"
PAGE_JOBS = 500  # the API's largest page
STAMPS = ("created_at", "submitted_at", "finished_at")


def submit(
    client: ApiClient, inputs, task, model, fmt, text_field, id_field, batch_size, wait, strict, priority, owner
) -> None:
    check_task(task)
    check_priority(priority)
    if not model:
        raise InputError("--model is required (see `lstmq models`)")
    if owner is not None:
        raise InputError("--owner does not apply with --api: a job submitted over the API belongs to its token")
    source = _one_source(inputs, fmt)
    query = {"task": task, "model": model, "format": source.format, "text_field": text_field, "id_field": id_field}
    query |= {"batch_size": local._int_option(batch_size, "--batch-size"), "strict": "true" if strict else None}
    query |= {"priority": priority}
    with _body(source) as (body, headers), client.request("POST", JOBS, query, body, headers) as response:
        report = json.loads(response.read())
    _print_rejected(client, source, report)
    click.echo(output.submitted_line(report["id"], report["total"], report["batches"], report["rejected"]), err=True)
    click.echo(report["id"])
    if wait:
        local._require_complete(follow(client, report["id"]))


def _one_source(inputs, fmt) -> Source:
    sources = resolve_sources(inputs, fmt)
    if len(sources) != 1 or sources[0].format == "folder":
        raise InputError("--api sends one input: a file or - for stdin (not a folder or several files)")
    return sources[0]


@contextmanager
def _body(source: Source) -> Iterator[tuple[BinaryIO, dict]]:
    """The upload and its headers: a file with its length, or stdin sent in chunks."""
    if source.path is None:
        yield sys.stdin.buffer, {}
        return
    with Path(source.path).open("rb") as file:
        yield file, {"Content-Length": str(Path(source.path).stat().st_size)}


def _print_rejected(client: ApiClient, source: Source, report: dict) -> None:
    """Every rejected line on stderr, as `lstmq submit` prints them (the API keeps 10,000)."""
    lines = report["first_rejected"]
    if report["rejected"] > len(lines):
        lines = client.get(f"{JOBS}/{report['id']}/rejected")["lines"]
    name = STDIN_NAME if source.path is None else source.name
    for bad in lines:
        click.echo(f"{name}:{bad['line']}: {bad['reason']}", err=True)


def status(client: ApiClient, job_id, as_json, watch) -> None:
    if watch:
        follow(client, job_id)
    current, health = _status_and_health(client.get(f"{JOBS}/{job_id}"))
    click.echo(json.dumps(current.as_dict()) if as_json else output.describe(current, health))


def job_status(client: ApiClient, job_id: str) -> JobStatus:
    return _status_and_health(client.get(f"{JOBS}/{job_id}"))[0]


def _status_and_health(found: dict) -> tuple[JobStatus, Health | None]:
    """The API's status object: the ``lstmq status --json`` fields plus ``health``."""
    fields = {key: value for key, value in found.items() if key != "health"}
    return JobStatus(**fields | {key: _when(found[key]) for key in STAMPS}), _health(found["health"])


def _health(found: dict | None) -> Health | None:
    if found is None:
        return None
    return Health(_when(found["stalled_since"]), found["recoveries"], _when(found["recovered_at"]))


def _when(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def results(client: ApiClient, job_id, fmt, label, failed_only) -> None:
    if fmt not in local.RESULT_FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected {', '.join(local.RESULT_FORMATS)})")
    task = job_status(client, job_id).task
    query = {"label": label, "status": DOC_FAILED if failed_only else None}
    with client.request("GET", f"{JOBS}/{job_id}/results", query) as response:
        output.write_results(_rows(response), fmt, task=task)


def _rows(response) -> Iterator[dict]:
    for line in response:  # JSON Lines as they arrive: constant memory for any job
        yield json.loads(line)


def jobs(client: ApiClient, as_json, limit) -> None:
    found = list(_recent(client, local._positive(local._int_option(limit, "--limit"), "--limit")))
    if as_json:
        click.echo(json.dumps([output.job_summary(_summary_status(job)) for job in found]))
    else:
        health = {job["id"]: _health(job["health"]) for job in found if job["health"]}
        output.print_jobs([_summary_status(job) for job in found], health)


def _recent(client: ApiClient, limit: int) -> Iterator[dict]:
    before = None
    while limit > 0:
        page = client.get(JOBS, limit=min(limit, PAGE_JOBS), before=before)
        yield from page["jobs"]
        limit, before = limit - len(page["jobs"]), page["next"]
        if before is None:
            return


def _summary_status(summary: dict) -> JobStatus:
    # A job list row has no rate or timestamps but its creation: print_jobs shows none of them.
    missing = {"docs_per_s": None, "eta_s": None, "submitted_at": None, "finished_at": None}
    fields = {key: summary[key] for key in output.JOB_KEYS}
    return JobStatus(**fields | missing | {"created_at": _when(summary["created_at"])})


def follow(client: ApiClient, job_id: str, interval_s: float = output.POLL_INTERVAL_S) -> JobStatus:
    """As ``output.follow``, polling the API: a progress bar on stderr until the job ends."""
    return output.follow_status(lambda: job_status(client, job_id), job_id, interval_s)


API_OPTION = click.Option(
    ["--api", "api_url"],
    metavar="URL",
    help="Ask the lstmq API at URL (default LSTMQ_API_URL; token in LSTMQ_API_TOKEN) instead of the database.",
)


def with_api(command: click.Command, remote: Callable[..., None]) -> click.Command:
    """``command`` plus ``--api``: with a URL (option or environment) ``remote`` runs instead."""

    def callback(api_url, **options):
        client = ApiClient.for_url(api_url)
        return command.callback(**options) if client is None else remote(client, **options)

    return click.Command(
        command.name, callback=callback, params=[*command.params, API_OPTION], help=command.help, epilog=command.epilog
    )


submit_command = with_api(local.submit, submit)
status_command = with_api(local.status, status)
results_command = with_api(local.results, results)
jobs_command = with_api(local.jobs, jobs)
