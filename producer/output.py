"""How the producer commands show things: status lines, result rows, job tables, progress.

Data goes to stdout (JSON Lines, CSV, or a table for people); progress goes to stderr so it
never mixes with what a script reads.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table
from sqlalchemy import Engine

from lstmq.contract import QUEUES
from lstmq.db.engine import session_scope
from lstmq.db.queries import (
    JOB_FINISHED,
    RENDER_COLUMNS,
    RESULT_COLUMNS,
    Health,
    JobStatus,
    job_status,
    live_workers,
)
from lstmq.db.schema import JOB_CANCELLED, WorkerBeat, as_utc, utcnow
from lstmq.parquet import write_parquet_file
from lstmq.settings import get_settings

JOB_KEYS = (
    "id",
    "state",
    "task",
    "model",
    "total",
    "done",
    "reused",
    "failed",
    "pending",
    "rejected",
    "created_at",
    "schedule",
    "priority",
    "owner",
)
TABLE_MAX_ROWS = 1000  # a terminal table is for looking; scripts use jsonl or csv
POLL_INTERVAL_S = 1.0


def count(n: int, noun: str) -> str:
    """``1 batch``, ``2 batches``, ``1,000 documents``."""
    return f"{n:,} {noun if n == 1 else noun + ('es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's')}"


def submitted_line(job_id: str, total: int, batches: int, rejected: int) -> str:
    """What ``lstmq submit`` (local or ``--api``) says once a job is queued."""
    return f"job {job_id}: {count(total, 'document')} queued in {count(batches, 'batch')}, {rejected:,} rejected"


PIPED_WIDTH = 200  # characters per table line when stdout is not a terminal


def describe(status: JobStatus, health: Health | None = None) -> str:
    rate = f"{status.docs_per_s:.1f} docs/s" if status.docs_per_s else "- docs/s"
    eta = str(timedelta(seconds=round(status.eta_s))) if status.eta_s is not None else "-"
    owner = f"  owner {status.owner}" if status.owner else ""
    return (
        f"job {status.id}  {status.task}  model {status.model}  state {status.state}\n"
        f"priority {status.priority}{owner}  in flight {count(status.in_flight, 'batch')}\n"
        f"total {status.total}  done {status.done}{reused(status)}  failed {status.failed}  "
        f"pending {status.pending}  rejected {status.rejected}\n"
        f"rate {rate}  eta {eta}"
        + (f"\nwaiting for {status.waiting}" if status.waiting and not health else "")
        + (f"\n{stalled(health)}" if health else "")
        + (f"\ncancelled: {status.note}" if status.note else "")
    )


def reused(status: JobStatus) -> str:
    """`` (12 reused)`` after the done count when some results were copied, else nothing."""
    return f" ({status.reused} reused)" if status.reused else ""


def stalled(health: Health) -> str:
    """One line: since when a job makes no progress, and whether the reconciler is on it."""
    since = f"stalled since {health.stalled_since:%Y-%m-%d %H:%M:%S} UTC"
    if health.recovering:
        return f"{since}, recovering (re-sent {health.recoveries}x, last at {health.recovered_at:%H:%M:%S})"
    return f"{since}, waiting for a live worker to re-send it (see `lstmq workers`)"


def stalled_briefly(health: Health, now: datetime | None = None) -> str:
    """``stalled`` for a table cell: ``stalled 2h, recovering 2x`` or ``stalled 5m, waiting for a worker``."""
    since = _age(((now or utcnow()) - health.stalled_since).total_seconds())
    return f"stalled {since}, " + (f"recovering {health.recoveries}x" if health.recovering else "waiting for a worker")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def job_summary(status: JobStatus) -> dict:
    full = status.as_dict()
    return {key: full[key] for key in JOB_KEYS}


def print_jobs(statuses: list[JobStatus], health: dict[str, Health] | None = None) -> None:
    # ids are for copying: never wrapped
    columns = ("state", "priority", "owner", "task", "model", "total", "done", "reused", "failed", "pending", "created")
    table = Table(Column("id", no_wrap=True), *columns)
    health = health or {}
    for s in statuses:
        table.add_row(
            s.id,
            f"{s.state} ({stalled_briefly(health[s.id])})" if s.id in health else s.state,
            s.priority,
            s.owner or "-",
            s.task,
            s.model,
            *(str(n) for n in (s.total, s.done, s.reused, s.failed, s.pending)),
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    _console().print(table)


def print_workers(workers: list[WorkerBeat]) -> None:
    table = Table("worker", "pid", "queues", "models", "device", "last beat", "current batches")
    for w in workers:
        current = ", ".join(f"job {b['job_id']} ({b['docs']} docs)" for b in w.current) or "idle"
        queues = ", ".join(w.queues) or "none (broker unreachable)"
        beat = f"{as_utc(w.beat_at):%H:%M:%S} UTC"
        table.add_row(w.name, str(w.pid), queues, ", ".join(w.models) or "-", w.device, beat, current)
    _console().print(table)


def _console() -> Console:
    # Piped output has no terminal width to fit; don't squeeze tables into 80 columns.
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


def write_results(rows: Iterable[dict], fmt: str, task: str, out: str | None = None) -> None:
    """Rows to stdout in ``fmt``; Parquet to the file ``out`` (checked by the caller)."""
    if fmt == "parquet":
        written = write_parquet_file(rows, task, Path(out))
        Console(stderr=True).print(f"{count(written, 'row')} written to {out}", highlight=False)
        return
    columns = RENDER_COLUMNS if task == "render" else RESULT_COLUMNS
    try:
        {"jsonl": _write_jsonl, "csv": _write_csv, "table": _write_table}[fmt](rows, columns)
        sys.stdout.flush()
    except BrokenPipeError:
        # `lstmq results JOB | head`: the reader left; that is not an error.
        sys.stdout = None
        raise SystemExit(0) from None


def _write_jsonl(rows: Iterable[dict], columns) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(rows: Iterable[dict], columns) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _write_table(rows: Iterable[dict], columns) -> None:
    table = Table(*columns)
    iterator = iter(rows)
    for row in islice(iterator, TABLE_MAX_ROWS):
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    _console().print(table)
    if next(iterator, None) is not None:
        Console(stderr=True).print(f"(first {TABLE_MAX_ROWS} rows; use --format jsonl or csv for all)")


def follow(engine: Engine, job_id: str, interval_s: float = POLL_INTERVAL_S) -> JobStatus:
    """Poll the job in the database with a progress bar on stderr until it is finished or cancelled."""

    def fetch() -> JobStatus:
        with session_scope(engine) as session:
            return job_status(session, job_id)

    def no_worker(current: JobStatus) -> str | None:
        queue = QUEUES[current.task]
        with session_scope(engine) as session:
            workers = live_workers(session, get_settings().heartbeat_s)
        if any(queue in worker.queues for worker in workers):
            return None
        return f"waiting: no live worker takes {queue} (start `lstmq worker`)"

    return follow_status(fetch, job_id, interval_s, no_worker)


def follow_status(
    fetch: Callable[[], JobStatus],
    job_id: str,
    interval_s: float = POLL_INTERVAL_S,
    waiting: Callable[[JobStatus], str | None] = lambda _status: None,
) -> JobStatus:
    """Call ``fetch`` (the database or the API) with a progress bar on stderr until the job ends.
    A line printed above the bar when it changes: why lstmq cancelled the job (its ``note``),
    or, while it is open, what it is ``waiting`` for (e.g. that no worker takes its queue)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"job {job_id[:8]}", total=None, failed=0)
        shown = None
        while True:
            current = fetch()
            done = current.state in (JOB_FINISHED, JOB_CANCELLED)
            line = f"cancelled: {current.note}" if current.note else None if done else waiting(current)
            if line and line != shown:
                progress.console.print(line, highlight=False)
            shown = line
            progress.update(bar, total=current.total, completed=current.done + current.failed, failed=current.failed)
            if done:
                return current
            time.sleep(interval_s)
