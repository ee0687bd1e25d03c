"""What a scheduled run costs on an unchanged corpus: ``lstmq bench schedule``.

Builds a throwaway corpus (``--docs`` JSONL documents over ``--files`` files), a throwaway
model artifact and schedule, then times in this one process:

- ``stat`` baseline: glob + ``os.stat`` of every file (the floor for noticing anything);
- the first run (reads and queues every document);
- ``--runs`` runs over the unchanged corpus, and one run after appending one line.

It prints wall time, SQL statements, and ratios against the baseline. The database is
``--database-url`` (use an empty one), else a temporary SQLite file; the broker is
``--redis-url``, else a temporary filesystem broker (each defaults to its LSTMQ_ setting).
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from safetensors.numpy import save_file
from sqlalchemy import event

from lstmq.bench import options
from lstmq.db.engine import get_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.store import NewSchedule, add_schedule
from lstmq.producer.schedules.timing import Timing
from lstmq.queue import make_celery
from lstmq.settings import get_settings


def make_corpus(folder: Path, docs: int, files: int) -> None:
    per_file = -(-docs // files)
    for f in range(files):
        with (folder / f"part{f:05d}.jsonl").open("w") as fh:
            for n in range(f * per_file, min(docs, (f + 1) * per_file)):
                fh.write(json.dumps({"id": f"d{n}", "text": f"document number {n} about topic {n % 97}"}) + "\n")


def make_model(folder: Path) -> str:
    """A structurally valid classifier artifact (the producer checks structure, not weights)."""
    target = folder / "bench-clf"
    target.mkdir(parents=True)
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(target / "model.safetensors"))
    (target / "config.json").write_text(json.dumps({"kind": "classifier", "labels": ["a", "b"], "max_tokens": 16}))
    (target / "tokenizer.json").write_text("{}")
    return target.name


class Counter:
    """SQL statements sent through the engine (executemany counts once)."""

    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args, **_kwargs) -> None:
        self.n += 1


def measure(counter: Counter, fn) -> tuple[float, int, object]:
    before, start = counter.n, time.perf_counter()
    value = fn()
    return time.perf_counter() - start, counter.n - before, value


@click.command("schedule")
@options.docs(100_000, "Documents in the corpus.")
@click.option("--files", type=click.IntRange(min=1), default=100, show_default=True, help="Files they are spread over.")
@click.option(
    "--runs", type=click.IntRange(min=1), default=5, show_default=True, help="Runs over the unchanged corpus."
)
@options.database_url(
    "Database (use an empty one)  [default: LSTMQ_DATABASE_URL, else a throwaway SQLite file]", default=None
)
@options.redis_url("Broker  [default: LSTMQ_BROKER_URL, else a throwaway embedded one]", default=None)
def schedule(docs: int, files: int, runs: int, database_url: str | None, redis_url: str | None) -> None:
    """What a scheduled run costs on an unchanged corpus: time and SQL."""
    if database_url:
        options.check_database(database_url)
    if redis_url:
        options.check_broker(redis_url)
    with tempfile.TemporaryDirectory(prefix="lstmq-bench-") as tmp:
        root = Path(tmp)
        # This process's settings: get_engine and make_celery below read them.
        os.environ["LSTMQ_HOME"] = str(root / "home")
        os.environ["LSTMQ_MODEL_DIR"] = str(root / "models")
        for name, url in (("LSTMQ_DATABASE_URL", database_url), ("LSTMQ_BROKER_URL", redis_url)):
            if url is None:  # the settings' default: a file under LSTMQ_HOME, thrown away with it
                os.environ.pop(name, None)
            else:
                os.environ[name] = url
        get_settings.cache_clear()
        (root / "corpus").mkdir()
        make_corpus(root / "corpus", docs, files)
        _bench(root, docs, files, runs)


def _bench(root: Path, docs: int, files: int, runs: int) -> None:
    engine, app = get_engine(), make_celery()
    upgrade(engine)
    model = make_model(get_settings().user_model_dir)
    pattern = str(root / "corpus" / "*.jsonl")
    with session_scope(engine) as session:
        sched_id = add_schedule(session, NewSchedule("bench", pattern, "classify", model, Timing(every_s=60))).id
    counter = Counter(engine)
    run = lambda: run_schedule(engine, app, sched_id)  # noqa: E731
    base_s = min(measure(counter, lambda: [os.stat(p) for p in glob.glob(pattern)])[0] for _ in range(5))
    click.echo(
        f"corpus: {docs} documents in {files} files; database {engine.dialect.name}; broker {app.conf.broker_url.split(':')[0]}"
    )
    click.echo(f"baseline glob+stat of {files} files: {base_s * 1000:.2f} ms")
    _report("first run", *measure(counter, run), base_s)
    for n in range(runs):
        _report(f"unchanged run {n + 1}", *measure(counter, run), base_s)
    with (root / "corpus" / "part00000.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "new", "text": "one more document"}) + "\n")
    _report("run after appending 1 line", *measure(counter, run), base_s)


def _report(label: str, seconds: float, statements: int, report, base_s: float) -> None:
    scan = report.scan
    click.echo(
        f"{label:<28} {seconds * 1000:9.1f} ms  {statements:4d} SQL statements  "
        f"{seconds / base_s:8.1f}x baseline  files read {scan.files_read:4d}  queued {scan.queued}"
    )
