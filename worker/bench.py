"""``lstmq bench``: how much of the model's speed survives the queue, measured in one run.

(a) the model alone, in this process, batched; (b) end to end: producer → Redis → a real
worker process → PostgreSQL, batches of ``--batch-size``; (c) the same with one document per
message. Prints docs/s and the ratios b/a (pipeline overhead) and b/c (what batching buys).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import click

from lstmq.errors import InputError
from lstmq.settings import DEFAULT_BATCH_DOCS

SAMPLE = Path(__file__).resolve().parents[1] / "lstmq" / "samples" / "news.jsonl"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
WAIT_TIMEOUT_S = 1800
POLL_S = 0.2


def generate_texts(n: int, seed: int = 0) -> list[str]:
    """AG-News-like texts (one or two sample sentences, varied): ~35 words on average each."""
    sentences = [json.loads(line)["text"] for line in SAMPLE.read_text().splitlines()]
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.choice((1, 2, 3)))) + f" ({rng.randrange(10**6)})" for _ in range(n)]


def read_texts(path: str, n: int) -> list[str]:
    from producer.readers import Record, read_sources, resolve_sources

    texts = [item.text for item in read_sources(resolve_sources([path])) if isinstance(item, Record)]
    return texts[:n]


def inprocess_rate(model: str, texts: list[str], batch_size: int, device: str) -> float:
    """(a) docs/s of the model alone: load once, warm up, then predict every batch."""
    from worker.ml.inference import load_classifier

    classifier = load_classifier(model, device=device)
    classifier.predict(texts[:batch_size])  # warm-up: allocator, threads
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        classifier.predict(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - start)


@contextmanager
def pipeline(redis_url: str, database_url: str, worker_args: list[str]):
    """Settings, a migrated database and one running worker process; cleaned up afterwards."""
    from lstmq.db.engine import make_engine
    from lstmq.db.migrate import upgrade
    from lstmq.queue import make_celery
    from lstmq.settings import Settings

    with tempfile.TemporaryDirectory(prefix="lstmq-bench-") as home:
        settings = Settings(home=Path(home), broker_url=redis_url, database_url=database_url)
        engine = make_engine(settings.database)
        upgrade(engine)
        env = {**os.environ, "LSTMQ_HOME": home, "LSTMQ_BROKER_URL": redis_url, "LSTMQ_DATABASE_URL": database_url}
        log = open(Path(home) / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen([sys.executable, "-m", "lstmq", "worker", "--loglevel=warning", *worker_args],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield engine, make_celery(settings), worker
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            log.close()
            engine.dispose()


def pipeline_rate(engine, app, worker, model: str, texts: list[str], batch_size: int) -> tuple[float, float]:
    """(docs/s from the start of submitting to the last result written, seconds submitting).

    The producer records every document before it sends the first batch, so the submit
    seconds are not overlapped with any work of the worker."""
    from producer.records import Record
    from producer.submit import submit_records

    start = time.perf_counter()
    report = submit_records(engine, app, (Record(text=t) for t in texts), task="classify", model=model,
                            batch_size=batch_size, sources=["bench"])
    submitted = time.perf_counter()
    wait_done(engine, report.job_id, worker)
    elapsed = time.perf_counter() - start
    delete_job(engine, report.job_id)
    return len(texts) / elapsed, submitted - start


def wait_done(engine, job_id: str, worker) -> None:
    from sqlalchemy import func, select

    from lstmq.db.schema import DOC_PENDING, Document

    deadline = time.monotonic() + WAIT_TIMEOUT_S
    query = select(func.count()).where(Document.job_id == job_id, Document.status == DOC_PENDING)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query) == 0:
                return
        if worker.poll() is not None:
            raise click.ClickException(f"the bench worker exited with {worker.returncode}")
        time.sleep(POLL_S)
    raise click.ClickException(f"job {job_id} not finished after {WAIT_TIMEOUT_S}s")


def delete_job(engine, job_id: str) -> None:
    from sqlalchemy import delete

    from lstmq.db.schema import Job

    with engine.begin() as conn:  # documents and results go with it (ON DELETE CASCADE)
        conn.execute(delete(Job).where(Job.id == job_id))


@click.command()
@click.option("--docs", "-n", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Documents for (a) and (b).")
@click.option("--single-docs", type=click.IntRange(min=1), default=2_000, show_default=True,
              help="Documents for (c), one per message (a rate, so fewer suffice).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="Texts to use (JSONL/CSV/TXT) instead of generated AG-News-like ones.")
@click.option("--model", default="news", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_DOCS, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads, here and in the worker.")
@click.option("--redis-url", default=lambda: os.environ.get("LSTMQ_BROKER_URL") or DEFAULT_REDIS,
              show_default=DEFAULT_REDIS, help="Broker (no other worker should consume it meanwhile).")
@click.option("--database-url", default=lambda: os.environ.get("LSTMQ_DATABASE_URL") or DEFAULT_DATABASE,
              show_default=DEFAULT_DATABASE, help="Database (schema upgraded; bench jobs deleted after).")
def bench(docs, single_docs, input_path, model, batch_size, device, threads, redis_url, database_url) -> None:
    """Throughput: model alone vs. through Redis + worker + database, batched vs. one per message."""
    worker_args = [f"--device={device}"]
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read when torch loads, below
        worker_args.append(f"--threads={threads}")
    texts = read_texts(input_path, docs) if input_path else generate_texts(docs)
    if not texts:
        raise InputError(f"{input_path}: no usable text records")
    click.echo(f"{len(texts)} documents, model {model}, batch {batch_size}, device {device}")
    a = inprocess_rate(model, texts, batch_size, device)
    click.echo(f"(a) model in-process, batched:     {a:10.0f} docs/s")
    with pipeline(redis_url, database_url, worker_args) as (engine, app, worker):
        pipeline_rate(engine, app, worker, model, texts[:batch_size], batch_size)  # warm-up: load the model
        b, b_submit = pipeline_rate(engine, app, worker, model, texts, batch_size)
        drain = len(texts) / (len(texts) / b - b_submit)
        click.echo(f"(b) end to end, {batch_size} docs/message: {b:10.0f} docs/s  (submit took {b_submit:.1f} s of it;"
                   f" after it the worker drained {drain:.0f} docs/s)")
        c, _ = pipeline_rate(engine, app, worker, model, texts[:single_docs], 1)
        click.echo(f"(c) end to end, 1 doc/message:     {c:10.0f} docs/s  ({min(single_docs, len(texts))} docs)")
    click.echo(f"b/a = {b / a:.2f} (target >= 0.7; drain/a = {drain / a:.2f})   b/c = {b / c:.1f} (target >= 5)")
