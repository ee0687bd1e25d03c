"""What the end-to-end benches share: generated texts, the model alone in this process, and a
running pipeline (a migrated database, the broker, one real worker process in a throwaway
folder) with timed jobs through it. ``lstmq bench end-to-end``, ``pipeline`` and ``fairness``
run on it; ``throwaway_postgres`` is the database of ``lstmq bench status`` and ``parquet``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from celery import Celery
from sqlalchemy import Engine, create_engine, delete, select, text

from lstmq import stages
from lstmq.bench.materials import train_minimal_classifier
from lstmq.bench.options import EMBEDDED_BROKER, check_database
from lstmq.contract import QUEUES
from lstmq.db.engine import make_engine
from lstmq.db.migrate import upgrade
from lstmq.db.schema import DOC_PENDING, Document, Job
from lstmq.errors import ConfigError
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.formats import Item
from lstmq.readers.records import Record
from lstmq.settings import SAMPLES_DIR, Settings, get_settings, mask_url
from lstmq.worker.shapes.captions import sample_scene

SAMPLE = SAMPLES_DIR / "news.jsonl"
WAIT_TIMEOUT_S = 1800
POLL_S = 0.2


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


def worker_args(task: str, device: str, concurrency: int, threads: int | None) -> list[str]:
    """The bench worker's options. ``threads`` applies to this process too (torch reads
    OMP_NUM_THREADS when it loads, after this)."""
    args = [f"--device={device}", f"--queues={QUEUES[task]}", f"--concurrency={concurrency}"]
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        args.append(f"--threads={threads}")
    return args


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


def timed_job(
    bench: Bench, task: str, model: str, items: Iterable[Item], batch_size: int, reuse: bool = True
) -> tuple[float, float, str]:
    """(docs/s from the start of submitting to the last result written, seconds submitting, the
    job's id): the job is left in the database."""
    start = time.perf_counter()
    report = submit_records(
        bench.engine, bench.app, items, task=task, model=model, batch_size=batch_size, sources=["bench"], reuse=reuse
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
    """The job, and with it its documents and results (ON DELETE CASCADE). The tables are
    analyzed first: the cascade looks up each document's results with a plan made from the
    statistics, and statistics taken before a run wrote its rows (an empty table) plan a scan of
    every result for each document (minutes for 100,000)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE documents, classifications, images, reviews"))
    with engine.begin() as conn:
        conn.execute(delete(Job).where(Job.id == job_id))


def postgres_url(database_url: str) -> str:
    """The SQLAlchemy URL of ``--database-url``, refused in one line unless it is PostgreSQL."""
    url = Settings(database_url=database_url).database
    if not url.startswith("postgresql"):
        raise ConfigError(f"--database-url {mask_url(database_url)}: this bench needs PostgreSQL")
    return url


@contextmanager
def throwaway_postgres(server_url: str) -> Iterator[tuple[str, Engine]]:
    """(name, engine) of a new database on the PostgreSQL server of ``server_url`` (a database
    there that lstmq can connect to and create databases from), dropped afterwards."""
    url = postgres_url(server_url)
    check_database(server_url)
    name = f"lstmq_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield name, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
