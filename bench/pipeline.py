"""``lstmq bench``: how much of the model's speed survives the queue, measured in one run.

(a) the model alone, in this process, batched; (b) end to end: producer → Redis → a real
worker process → PostgreSQL, batches of ``--batch-size``; (c) the same with one document per
message. Prints the rates and the ratios b/a (pipeline overhead) and b/c (what batching buys).

``--task classify`` (default) counts documents classified; ``--task render`` counts images: (a)
is generation alone, (b) and (c) include PNG encoding, the files and the database rows.

``--pipeline`` measures lstmq itself: (a) and (p), end to end, for a minimal classifier whose
cost is negligible (``lstmq.bench.materials``), with the docs/s of each stage as the code
counted them (``lstmq.stages``) on both sides, so the output names the next bottleneck.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from celery import Celery
from sqlalchemy import Engine, delete, select

from lstmq import stages
from lstmq.bench import cpu_usage
from lstmq.bench import fairness as dispatch_fairness
from lstmq.bench.materials import (
    MINIMAL_MODEL,
    model_cpu,
    report_pipeline,
    since,
    train_minimal_classifier,
    write_corpus,
)
from lstmq.contract import QUEUES
from lstmq.db.engine import make_engine
from lstmq.db.migrate import upgrade
from lstmq.db.schema import DOC_PENDING, Document, Job
from lstmq.errors import InputError
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.formats import Item
from lstmq.readers.records import Record
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.settings import DEFAULT_BATCH_DOCS, SAMPLES_DIR, Settings, get_settings
from lstmq.worker.cli import DEFAULT_CONCURRENCY
from lstmq.worker.shapes.captions import sample_scene

SAMPLE = SAMPLES_DIR / "news.jsonl"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
EMBEDDED_BROKER = "filesystem://"  # --redis-url for the embedded setup's broker, in the bench's folder
WAIT_TIMEOUT_S = 1800
POLL_S = 0.2
INPROCESS_DOCS = 20_000  # (a) of --pipeline: a rate, so a sample of --docs suffices


def generate_texts(n: int, seed: int = 0) -> list[str]:
    """AG-News-like texts (one or two sample sentences, varied): ~35 words on average each."""
    return list(iter_texts(n, seed))


def iter_texts(n: int, seed: int = 0) -> Iterator[str]:
    """``generate_texts``, one at a time (a million-document corpus is written, never held)."""
    sentences = [json.loads(line)["text"] for line in SAMPLE.read_text().splitlines()]
    rng = random.Random(seed)
    for _ in range(n):
        yield " ".join(rng.sample(sentences, rng.choice((1, 2, 3)))) + f" ({rng.randrange(10**6)})"


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
        from lstmq.worker.ml.generator.inference import load_image_generator

        generator = load_image_generator(model, device=device)
        run = lambda part: generator.render(part, list(range(len(part))))  # noqa: E731
    else:
        from lstmq.worker.ml.classifier.inference import load_classifier  # torch: as above

        classifier = load_classifier(model, device=device)
        run = classifier.predict
        # A worker merges the batches in flight into passes of up to batch_docs (4,096 on CUDA):
        # (a) is the model at the passes it gets there, not at one message's size.
        batch_size = max(batch_size, classifier.batch_docs)
    run(texts[:batch_size])  # warm-up: allocator, threads
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        run(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - start)


@dataclass(frozen=True)
class Bench:
    """What a bench run works with: the database, the broker, the worker and its folder."""

    engine: Engine
    app: Celery
    worker: subprocess.Popen
    home: Path


@contextmanager
def pipeline(redis_url: str, database_url: str, worker_args: list[str], minimal_model: bool = False):
    """Settings, a migrated database and one running worker process; cleaned up afterwards.
    ``minimal_model``: the minimal classifier is trained into the bench's folder first, and this
    process and the worker find their models there."""
    # Under the data folder, not /tmp: images land on the disk that holds lstmq data
    # (file creation in /tmp here was 3x slower than on the data disk).
    data = get_settings().home_dir
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=data) as name:
        home = Path(name)
        broker_url = None if redis_url == EMBEDDED_BROKER else redis_url  # None: the embedded broker
        settings = Settings(home=home, broker_url=broker_url, database_url=database_url)
        engine = make_engine(settings.database)
        upgrade(engine)
        env = worker_env(home, broker_url, database_url)
        if minimal_model:
            train_minimal_classifier(home / "models")
            env["LSTMQ_MODEL_DIR"] = str(home / "models")
        with models_in(env.get("LSTMQ_MODEL_DIR")), running_worker(env, home, worker_args) as worker:
            yield Bench(engine, make_celery(settings), worker, home)
        engine.dispose()


def worker_env(home: Path, broker_url: str | None, database_url: str) -> dict[str, str]:
    """The worker's settings: the bench's folder (deleted with the rest), and its services."""
    (home / "stages").mkdir()
    env = {key: value for key, value in os.environ.items() if key != "LSTMQ_BROKER_URL"}
    env.update(LSTMQ_HOME=str(home), LSTMQ_DATABASE_URL=database_url, LSTMQ_IMAGE_DIR=str(home / "images"))
    env[stages.STAGES_DIR_ENV] = str(home / "stages")
    if broker_url:
        env["LSTMQ_BROKER_URL"] = broker_url
    return env


@contextmanager
def running_worker(env: dict[str, str], home: Path, worker_args: list[str]) -> Iterator[subprocess.Popen]:
    with open(home / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "lstmq", "worker", "--loglevel=warning", *worker_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            worker.terminate()
            worker.wait(timeout=60)


@contextmanager
def models_in(model_dir: str | None) -> Iterator[None]:
    """This process looks for models in ``model_dir`` (when given) until the block ends."""
    before = os.environ.get("LSTMQ_MODEL_DIR")
    if model_dir:
        os.environ["LSTMQ_MODEL_DIR"] = model_dir
        get_settings.cache_clear()
    try:
        yield
    finally:
        if model_dir:
            os.environ.pop("LSTMQ_MODEL_DIR") if before is None else os.environ.update(LSTMQ_MODEL_DIR=before)
            get_settings.cache_clear()


def pipeline_rate(bench: Bench, task: str, model: str, texts: list[str], batch_size: int) -> tuple[float, float]:
    """(docs/s from the start of submitting to the last result written, seconds submitting).

    The producer sends each recorded chunk's full batches while it reads on, so the worker
    starts before the submit returns."""
    return timed_submit(bench, task, model, (Record(text=t) for t in texts), batch_size)


def timed_submit(bench: Bench, task: str, model: str, items: Iterable[Item], batch_size: int) -> tuple[float, float]:
    rate, submit_seconds, job_id = timed_job(bench, task, model, items, batch_size)
    delete_job(bench.engine, job_id)
    return rate, submit_seconds


def timed_job(bench: Bench, task: str, model: str, items: Iterable[Item], batch_size: int) -> tuple[float, float, str]:
    """(docs/s from the start of submitting to the last result written, seconds submitting, the
    job's id): the job is left in the database."""
    start = time.perf_counter()
    report = submit_records(
        bench.engine, bench.app, items, task=task, model=model, batch_size=batch_size, sources=["bench"]
    )
    submitted = time.perf_counter()
    wait_done(bench.engine, report.job_id, bench.worker)
    elapsed = time.perf_counter() - start
    return report.total / elapsed, submitted - start, report.job_id


def wait_done(engine, job_id: str, worker) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    # Whether one is left, not how many: counting a million rows five times a second would
    # load the database the bench is measuring.
    query = select(Document.id).where(Document.job_id == job_id, Document.status == DOC_PENDING).limit(1)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query) is None:
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
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="The worker's --concurrency (batches in flight, threads sharing one model); (a) is one thread.",
)
@click.option(
    "--redis-url",
    default=lambda: os.environ.get("LSTMQ_BROKER_URL") or DEFAULT_REDIS,
    show_default=DEFAULT_REDIS,
    help=f"Broker (no other worker should consume it meanwhile); {EMBEDDED_BROKER} for the embedded one.",
)
@click.option(
    "--database-url",
    default=lambda: os.environ.get("LSTMQ_DATABASE_URL") or DEFAULT_DATABASE,
    show_default=DEFAULT_DATABASE,
    help="Database (schema upgraded; bench jobs deleted after).",
)
@click.option(
    "--pipeline",
    "pipeline_only",
    is_flag=True,
    help="(p) instead of (b) and (c): end to end with a minimal classifier trained on the fly, so what"
    " remains is lstmq's own cost, with docs/s per stage (classify only).",
)
@click.option(
    "--fairness",
    is_flag=True,
    help="How dispatch serves several jobs at once (minimal classifier): a small and a high-priority job"
    " behind a backlog of --docs, two owners' shares at weights 1:1 and 3:1, the broker's memory.",
)
@click.option(
    "--window", type=click.FloatRange(min=1), default=10.0, show_default=True, help="Seconds per share window."
)
def bench(
    docs,
    single_docs,
    input_path,
    task,
    model,
    batch_size,
    device,
    threads,
    concurrency,
    redis_url,
    database_url,
    pipeline_only,
    fairness,
    window,
) -> None:
    """Throughput: model alone vs. through Redis + worker + database, batched vs. one per message."""
    if pipeline_only and (task != "classify" or model):
        raise InputError("--pipeline runs its own minimal classifier: no --model, and --task classify")
    model = model or ("shapes" if task == "render" else "news")
    worker_args = [f"--device={device}", f"--queues={QUEUES[task]}", f"--concurrency={concurrency}"]
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read when torch loads, below
        worker_args.append(f"--threads={threads}")
    if pipeline_only:
        return bench_pipeline(docs, input_path, batch_size, device, worker_args, redis_url, database_url)
    if fairness:
        with pipeline(redis_url, database_url, worker_args, minimal_model=True) as run:
            click.echo(f"fairness: minimal classifier, batch {batch_size}, worker concurrency {concurrency}")
            return dispatch_fairness.run(run, MINIMAL_MODEL, docs, batch_size, 20, window, redis_url)
    texts = bench_texts(task, docs, input_path)
    click.echo(
        f"{len(texts)} documents, task {task}, model {model}, batch {batch_size}, device {device},"
        f" worker concurrency {concurrency}"
    )
    bench_model(task, model, texts, single_docs, batch_size, device, worker_args, redis_url, database_url)


def bench_model(task, model, texts, single_docs, batch_size, device, worker_args, redis_url, database_url) -> None:
    """(a), (b) and (c) for ``model``, and their ratios."""
    unit = "images/s" if task == "render" else "docs/s"
    a = inprocess_rate(task, model, texts, batch_size, device)
    click.echo(f"(a) model in-process, batched:     {a:10.0f} {unit}")
    with pipeline(redis_url, database_url, worker_args) as run:
        pipeline_rate(run, task, model, texts[:batch_size], batch_size)  # warm-up: load the model
        b, b_submit = pipeline_rate(run, task, model, texts, batch_size)
        click.echo(
            f"(b) end to end, {batch_size} docs/message: {b:10.0f} {unit}  (the submit returned after"
            f" {b_submit:.1f} s of {len(texts) / b:.1f})"
        )
        c, _ = pipeline_rate(run, task, model, texts[:single_docs], 1)
        click.echo(f"(c) end to end, 1 doc/message:     {c:10.0f} {unit}  ({min(single_docs, len(texts))} docs)")
    click.echo(f"b/a = {b / a:.2f}   b/c = {b / c:.1f}")


def bench_pipeline(docs, input_path, batch_size, device, worker_args, redis_url, database_url) -> None:
    """(a) and (p) for the minimal classifier, with the stage counters of both sides of (p)."""
    click.echo(f"pipeline: minimal classifier, batch {batch_size}, device {device}")
    with pipeline(redis_url, database_url, worker_args, minimal_model=True) as run:
        a, a_cpu = model_alone(generate_texts(min(docs, INPROCESS_DOCS)), batch_size, device)
        click.echo(f"(a) model in-process, batched:     {a:12,.0f} docs/s  {model_cpu(a, a_cpu)}")
        corpus = Path(input_path) if input_path else write_corpus(run.home / "corpus.jsonl", iter_texts(docs))
        pipeline_rate(run, "classify", MINIMAL_MODEL, generate_texts(batch_size), batch_size)  # warm-up
        p, p_submit, producer, worker, cpu = counted_run(run, corpus, batch_size)
    report_pipeline(p, p_submit, a, producer, worker, cpu, a_cpu)


def model_alone(texts: list[str], batch_size: int, device: str) -> tuple[float, float]:
    """(a) for the minimal classifier, and the CPU seconds per document this process spent on it:
    1/a on one idle core, more when threads add up, less of it when other processes take turns."""
    inprocess_rate("classify", MINIMAL_MODEL, texts[:batch_size], batch_size, device)  # imports: not (a)
    start = time.process_time()
    a = inprocess_rate("classify", MINIMAL_MODEL, texts, batch_size, device)
    return a, (time.process_time() - start) / len(texts)


def counted_run(run: Bench, corpus: Path, batch_size: int) -> tuple[float, float, dict, dict, cpu_usage.Usage | None]:
    """(p) as ``timed_submit`` gives it, what each side's stage counters counted meanwhile, and
    the CPU that the producer, the worker and the rest of the machine used meanwhile (None
    without /proc). The job is deleted after the CPU reading: deleting is no part of (p)."""
    worker_before = stages.collect(run.home / "stages")
    stages.reset()
    items = read_sources(resolve_sources([str(corpus)]))
    meter = cpu_usage.Meter(run.worker.pid)
    p, p_submit, job_id = timed_job(run, "classify", MINIMAL_MODEL, items, batch_size)
    cpu = meter.stop()
    delete_job(run.engine, job_id)
    time.sleep(POLL_S)  # the worker flushes its counters just after committing its last batch
    return p, p_submit, stages.snapshot(), since(stages.collect(run.home / "stages"), worker_before), cpu
