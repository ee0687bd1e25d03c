"""``lstmq bench``: how much of the model's speed survives the queue, measured in one run.

(a) the model alone, in this process, batched; (b) end to end: producer → Redis → a real
worker process → PostgreSQL, batches of ``--batch-size``; (c) the same with one document per
message. Prints the rates and the ratios b/a (pipeline overhead) and b/c (what batching buys).

``--task classify`` (default) counts documents classified; ``--task render`` counts images: (a)
is generation alone, (b) and (c) include PNG encoding, the files and the database rows.
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
from sqlalchemy import delete, func, select

from lstmq.contract import QUEUES
from lstmq.db.engine import make_engine
from lstmq.db.migrate import upgrade
from lstmq.db.schema import DOC_PENDING, Document, Job
from lstmq.errors import InputError
from lstmq.queue import make_celery
from lstmq.readers.records import Record
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.settings import DEFAULT_BATCH_DOCS, Settings, get_settings
from producer.submit import submit_records
from worker.shapes.captions import sample_scene

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


def generate_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` shapes-world captions, half one-object and half two-object, any colour-shape pair."""
    rng = random.Random(seed)
    return [sample_scene(rng, 1 + i % 2, held_out=None).caption for i in range(n)]


def read_texts(path: str, n: int) -> list[str]:
    texts = [item.text for item in read_sources(resolve_sources([path])) if isinstance(item, Record)]
    return texts[:n]


def bench_texts(task: str, n: int, input_path: str | None) -> list[str]:
    if input_path:
        texts = read_texts(input_path, n)
        if not texts:
            raise InputError(f"{input_path}: no usable text records")
        return texts
    if task == "render":
        return generate_captions(n)
    return generate_texts(n)


def inprocess_rate(task: str, model: str, texts: list[str], batch_size: int, device: str) -> float:
    """(a) per second, the model alone: load once, warm up, then run every batch."""
    if task == "render":
        # torch: here, not at the top, so `lstmq --help` (it imports every command) runs without it
        from worker.ml.generator.inference import load_image_generator

        generator = load_image_generator(model, device=device)
        run = lambda part: generator.render(part, list(range(len(part))))  # noqa: E731
    else:
        from worker.ml.classifier.inference import load_classifier  # torch: as above

        run = load_classifier(model, device=device).predict
    run(texts[:batch_size])  # warm-up: allocator, threads
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        run(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - start)


@contextmanager
def pipeline(redis_url: str, database_url: str, worker_args: list[str]):
    """Settings, a migrated database and one running worker process; cleaned up afterwards."""
    # Under the data folder, not /tmp: images land on the disk that holds lstmq data
    # (file creation in /tmp here was 3x slower than on the data disk).
    data = get_settings().home_dir
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=data) as home:
        settings = Settings(home=Path(home), broker_url=redis_url, database_url=database_url)
        engine = make_engine(settings.database)
        upgrade(engine)
        env = {
            **os.environ,
            "LSTMQ_HOME": home,
            "LSTMQ_BROKER_URL": redis_url,
            "LSTMQ_DATABASE_URL": database_url,
            "LSTMQ_IMAGE_DIR": str(Path(home) / "images"),
        }  # deleted with the rest
        log = open(Path(home) / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "lstmq", "worker", "--loglevel=warning", *worker_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield engine, make_celery(settings), worker
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            log.close()
            engine.dispose()


def pipeline_rate(engine, app, worker, task: str, model: str, texts: list[str], batch_size: int) -> tuple[float, float]:
    """(docs/s from the start of submitting to the last result written, seconds submitting).

    The producer sends each recorded chunk's full batches while it reads on, so the worker
    starts before the submit returns."""
    start = time.perf_counter()
    report = submit_records(
        engine, app, (Record(text=t) for t in texts), task=task, model=model, batch_size=batch_size, sources=["bench"]
    )
    submitted = time.perf_counter()
    wait_done(engine, report.job_id, worker)
    elapsed = time.perf_counter() - start
    delete_job(engine, report.job_id)
    return len(texts) / elapsed, submitted - start


def wait_done(engine, job_id: str, worker) -> None:
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
    with engine.begin() as conn:  # documents and results go with it (ON DELETE CASCADE)
        conn.execute(delete(Job).where(Job.id == job_id))


@click.command()
@click.option(
    "--docs", "-n", type=click.IntRange(min=1), default=20_000, show_default=True, help="Documents for (a) and (b)."
)
@click.option(
    "--single-docs",
    type=click.IntRange(min=1),
    default=2_000,
    show_default=True,
    help="Documents for (c), one per message (a rate, so fewer suffice).",
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Texts to use (JSONL/CSV/TXT) instead of generated AG-News-like ones.",
)
@click.option(
    "--task",
    type=click.Choice(["classify", "render"]),
    default="classify",
    show_default=True,
    help="render: images/s of an image generator, PNG files and rows included end to end.",
)
@click.option("--model", help="Model to run  [default: news for classify, shapes for render]")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_DOCS, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="torch CPU threads, here and in the worker.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="The worker's --concurrency (processes on CPU); (a) stays one process.",
)
@click.option(
    "--redis-url",
    default=lambda: os.environ.get("LSTMQ_BROKER_URL") or DEFAULT_REDIS,
    show_default=DEFAULT_REDIS,
    help="Broker (no other worker should consume it meanwhile).",
)
@click.option(
    "--database-url",
    default=lambda: os.environ.get("LSTMQ_DATABASE_URL") or DEFAULT_DATABASE,
    show_default=DEFAULT_DATABASE,
    help="Database (schema upgraded; bench jobs deleted after).",
)
def bench(
    docs, single_docs, input_path, task, model, batch_size, device, threads, concurrency, redis_url, database_url
) -> None:
    """Throughput: model alone vs. through Redis + worker + database, batched vs. one per message."""
    model = model or ("shapes" if task == "render" else "news")
    unit = "images/s" if task == "render" else "docs/s"
    worker_args = [f"--device={device}", f"--queues={QUEUES[task]}", f"--concurrency={concurrency}"]
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read when torch loads, below
        worker_args.append(f"--threads={threads}")
    texts = bench_texts(task, docs, input_path)
    click.echo(
        f"{len(texts)} documents, task {task}, model {model}, batch {batch_size}, device {device},"
        f" worker concurrency {concurrency}"
    )
    a = inprocess_rate(task, model, texts, batch_size, device)
    click.echo(f"(a) model in-process, batched:     {a:10.0f} {unit}")
    with pipeline(redis_url, database_url, worker_args) as (engine, app, worker):
        pipeline_rate(engine, app, worker, task, model, texts[:batch_size], batch_size)  # warm-up: load the model
        b, b_submit = pipeline_rate(engine, app, worker, task, model, texts, batch_size)
        click.echo(
            f"(b) end to end, {batch_size} docs/message: {b:10.0f} {unit}  (the submit returned after"
            f" {b_submit:.1f} s of {len(texts) / b:.1f})"
        )
        c, _ = pipeline_rate(engine, app, worker, task, model, texts[:single_docs], 1)
        click.echo(f"(c) end to end, 1 doc/message:     {c:10.0f} {unit}  ({min(single_docs, len(texts))} docs)")
    click.echo(f"b/a = {b / a:.2f} (target >= 0.7)   b/c = {b / c:.1f} (target >= 5)")
