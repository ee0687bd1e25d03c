"""``make demo``: the whole pipeline on this machine with no servers.

Embedded setup (SQLite file + filesystem broker under ``LSTMQ_HOME``, default ``./.lstmq``):
upgrade the schema, start a real worker process, submit the shipped sample corpus to the
shipped models, wait, print the results, say where the data lives, stop the worker.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, and_, select

from lstmq.db.engine import get_engine, ping, session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.queries import job_status
from lstmq.db.schema import Classification, Document, Image
from lstmq.errors import LstmqError, UserError
from lstmq.modelstore import find_model
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.settings import SAMPLES_DIR, get_settings, mask_url

# (task, model, sample file): one job each.
CLASSIFY_JOBS = [
    ("classify", "news", "news.jsonl"),
    ("classify", "sentiment", "reviews.jsonl"),
    ("classify", "spam", "sms.jsonl"),
]
RENDER_JOB = ("render", "shapes", "captions.jsonl")
WAIT_TIMEOUT_S = 300
POLL_S = 0.5
STOP_TIMEOUT_S = 30

console = Console()


def start_worker(home: Path) -> subprocess.Popen:
    """A real ``lstmq worker`` in its own session (Ctrl+C reaches us; we stop it cleanly)."""
    log = (home / "worker.log").open("ab")
    env = {**os.environ, "LSTMQ_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lstmq", "worker", "--loglevel=info"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM: finish the current batch), SIGKILL only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def installed(model: str, kind: str) -> bool:
    try:
        return find_model(model).kind == kind
    except UserError:
        return False


def runnable_jobs() -> list[tuple[str, str, str]]:
    """The sample jobs whose model is installed (render also needs the render task's code)."""
    jobs = [job for job in CLASSIFY_JOBS if installed(job[1], "classifier")]
    if importlib.util.find_spec("lstmq.worker.render") is not None and installed(RENDER_JOB[1], "generator"):
        jobs.append(RENDER_JOB)
    for task, model, _ in sorted(set(CLASSIFY_JOBS + [RENDER_JOB]) - set(jobs)):
        console.print(f"[yellow]skipping {task} with {model}: model (or task) not installed")
    return jobs


def submit_samples(engine: Engine, app, jobs) -> list[str]:
    ids = []
    for task, model, sample in jobs:
        path = str(SAMPLES_DIR / sample)
        report = submit_records(
            engine, app, read_sources(resolve_sources([path])), task=task, model=model, sources=[path]
        )
        console.print(
            f"submitted {report.total} documents of {sample} to {task} with [bold]{model}[/] (job {report.job_id})",
            soft_wrap=True,
        )
        ids.append(report.job_id)
    return ids


def wait_for(engine: Engine, job_ids: list[str], worker: subprocess.Popen, log: Path) -> list:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    with console.status("waiting for the worker (the first batch loads the model)..."):
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                statuses = [job_status(session, job_id) for job_id in job_ids]
            if all(s.pending == 0 for s in statuses):
                return statuses
            if worker.poll() is not None:
                raise SystemExit(f"error: the worker exited ({worker.returncode}); see {log}")
            time.sleep(POLL_S)
    raise SystemExit(f"error: jobs not finished after {WAIT_TIMEOUT_S}s; see {log}")


def results_table(engine: Engine, status) -> Table:
    result = Classification if status.task == "classify" else Image
    columns = [Classification.label, Classification.score] if status.task == "classify" else [Image.path]
    stmt = (
        select(Document.external_id, Document.text, Document.status, Document.error, *columns)
        .outerjoin(result, and_(result.document_id == Document.id, result.model == status.model))
        .where(Document.job_id == status.id)
        .order_by(Document.id)
    )
    table = Table(title=f"{status.task} with {status.model}: {status.done} done, {status.failed} failed")
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    # Every column but the text keeps its width; the text gets what is left, on one line.
    widths = {"id": max(len(r.external_id) for r in rows)}
    if status.task == "classify":
        widths |= {"label": max([len("label")] + [len(str(r.label)) for r in rows]), "score": 5}
    else:
        widths["image"] = max(len(str(r.path)) for r in rows)
    text_width = max(20, console.width - sum(widths.values()) - 3 * (len(widths) + 1) - 1)
    table.add_column("id", width=widths["id"], no_wrap=True)
    table.add_column("text", width=text_width, no_wrap=True, overflow="ellipsis")
    for name in list(widths)[1:]:
        table.add_column(name, width=widths[name], no_wrap=True, overflow="fold")
    for row in rows:
        cells = [f"{row.label}", f"{row.score:.2f}"] if status.task == "classify" else [str(row.path)]
        if row.status != "done":
            cells = [Text(f"{row.status}: {row.error}", style="red")] + [""] * (len(cells) - 1)
        table.add_row(row.external_id, row.text, *cells)
    return table


def main() -> None:
    try:
        settings = get_settings()
        home = settings.home_dir
        home.mkdir(parents=True, exist_ok=True)
        engine = get_engine(settings)
        ping(engine)
        upgrade(engine)
    except LstmqError as exc:
        raise SystemExit(f"error: {exc}") from None
    jobs = runnable_jobs()
    if not jobs:
        raise SystemExit("error: no shipped model is installed (lstmq/models/ is empty)")
    worker = start_worker(home)
    try:
        job_ids = submit_samples(engine, make_celery(settings), jobs)
        for status in wait_for(engine, job_ids, worker, home / "worker.log"):
            console.print(results_table(engine, status))
    except LstmqError as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        with console.status("stopping the worker..."):
            stop_worker(worker)
    # Paths stay on one line so they can be copied.
    console.print(f"database:   {mask_url(settings.database)}", soft_wrap=True, highlight=False)
    console.print(f"images:     {settings.images}", soft_wrap=True, highlight=False)
    console.print(f"worker log: {home / 'worker.log'}", soft_wrap=True, highlight=False)
    console.print("next: lstmq jobs; lstmq results JOB_ID --format csv")


if __name__ == "__main__":
    main()
