"""``lstmq bench peer``: lstmq beside Ray Data, on the same corpus, model and database, in one run.

Both read one JSON Lines file of ``{"id", "text"}``, classify it with the minimal classifier
(``lstmq.bench.materials``) on the CPU, and write a row per document into PostgreSQL:

- lstmq: submit → broker → one running worker → database, timed as ``lstmq bench pipeline``
  times (p): from the start of the submit to the last result written;
- Ray Data: ``read_json`` → ``map_batches`` on a pool of actors that each load the model once →
  ``write_sql`` of (id, label) into a fresh table, timed from the read to the end of the write.

Rounds alternate which side runs first, so neither always finds the caches the other warmed.
Ray is the optional ``bench`` extra: it is imported only when this command runs.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click
import numpy as np
from sqlalchemy import Engine, make_url, text

from lstmq.bench import cpu_usage, options
from lstmq.bench.end_to_end import bench_texts
from lstmq.bench.harness import (
    Bench,
    generate_texts,
    iter_texts,
    models_in,
    pipeline,
    pipeline_rate,
    postgres_url,
    worker_args,
)
from lstmq.bench.materials import MINIMAL_MODEL, write_corpus
from lstmq.bench.pipeline import counted_run
from lstmq.errors import ConfigError, NotInstalled
from lstmq.settings import get_settings

RAY_MISSING = "Ray is not installed: pip install 'lstmq[bench]'"
DEVICE = "cpu"  # Ray is given CPUs only (num_cpus), so lstmq's worker runs on the CPU too


def import_ray():
    """Ray with Ray Data, or one line saying how to get them."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise NotInstalled(RAY_MISSING) from None
    return ray


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_actors(actors: int, cores: int) -> None:
    # Ray Data holds a CPU for each actor, and its read and write tasks need one more: with every
    # CPU held by actors they never run, and the job waits forever.
    if actors >= cores:
        raise ConfigError(
            f"--ray-actors {actors}: each actor holds one of the {cores} cores given to Ray and its"
            f" read and write tasks need another; at most {cores - 1} here"
        )


class Classify:
    """Ray Data's callable class: each actor (its own process) loads the minimal classifier once,
    from the folder it is told, with the torch threads it is told."""

    def __init__(self, model_dir: str, threads: int) -> None:
        # In the actor, both: this module is imported by `lstmq --help`, which must not load torch.
        import torch

        from lstmq.worker.ml.classifier.inference import load_classifier  # loads torch: as above

        torch.set_num_threads(threads)
        with models_in(model_dir):
            self.classifier = load_classifier(MINIMAL_MODEL, device=DEVICE)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        predictions = self.classifier.predict(batch["text"].tolist())
        return {"id": batch["id"], "label": np.array([p.label for p in predictions], dtype=object)}


@dataclass(frozen=True)
class Peer:
    """What both sides run on."""

    run: Bench
    corpus: Path
    warm_up: Path  # a batch, through Ray's pipeline once per Ray session before it is timed
    docs: int
    batch_size: int
    actors: int
    cores: int
    threads: int  # torch threads: the worker's, and each actor's
    conninfo: str  # the database, as psycopg connects to it


@dataclass(frozen=True)
class Side:
    """One timed run: docs/s, seconds, and the CPU it used per document."""

    name: str
    rate: float
    seconds: float
    cpu: str

    def line(self) -> str:
        return f"  {self.name:<8} {self.rate:10,.0f} docs/s  ({self.seconds:5.1f} s)  {self.cpu}"


@click.command("peer")
@options.docs(50_000, "Documents in the corpus both sides read.")
@options.input_path(
    "Texts (JSONL/CSV/TXT) instead of generated AG-News-like ones: the first --docs are rewritten as the JSON Lines file both sides read."
)
@options.batch_size("Documents per message (lstmq) and per map_batches batch (Ray Data).")
@options.threads(
    "torch CPU threads of the worker and of each Ray actor  [default: every core, as the worker's own default]"
)
@options.concurrency()
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Ray Data actors, each a process with its own copy of the model.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Rounds of one lstmq run and one Ray run; each round starts with the side the last one ended with.",
)
@options.redis_url()
@options.database_url("PostgreSQL (schema upgraded; the bench's jobs and Ray's table are deleted after).")
def peer(docs, input_path, batch_size, threads, concurrency, ray_actors, repeat, redis_url, database_url) -> None:
    """lstmq beside Ray Data on the same corpus, model and database.

    Ray Data reads the JSON Lines with read_json, classifies with map_batches on --ray-actors
    actors and writes (id, label) with write_sql into a table it drops after; lstmq submits the
    same file to one worker. Prints both rates, lstmq/Ray, and the CPU each used per document."""
    ray = import_ray()  # before any service is touched: the extra may simply be missing
    cores = available_cores()
    check_actors(ray_actors, cores)
    options.check_input(input_path)
    conninfo = psycopg_conninfo(database_url)
    options.check_services(database_url, redis_url)
    texts = bench_texts("classify", docs, input_path) if input_path else iter_texts(docs)
    with pipeline(
        redis_url, database_url, worker_args("classify", DEVICE, concurrency, threads), minimal_model=True
    ) as run:
        corpus = write_corpus(run.home / "corpus.jsonl", texts, ids=True)
        warm_up = write_corpus(run.home / "warm-up.jsonl", generate_texts(batch_size), ids=True)
        setup = Peer(
            run, corpus, warm_up, count_lines(corpus), batch_size, ray_actors, cores, threads or cores, conninfo
        )
        print_setup(setup, concurrency, ray.__version__)
        pipeline_rate(run, "classify", MINIMAL_MODEL, generate_texts(batch_size), batch_size)  # warm-up: the model
        ratios = [measure_round(number, setup, ray) for number in range(repeat)]
    if repeat > 1:
        click.echo(summary(ratios))


def psycopg_conninfo(database_url: str) -> str:
    """``--database-url`` as psycopg connects to it: Ray's write tasks open their own connections."""
    return make_url(postgres_url(database_url)).set(drivername="postgresql").render_as_string(hide_password=False)


def count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def print_setup(setup: Peer, concurrency: int, ray_version: str) -> None:
    actors = f"{setup.actors} actor{'s' if setup.actors > 1 else ''}"
    click.echo(
        f"peer: {setup.docs:,} documents, minimal classifier on the CPU, batch {setup.batch_size},"
        f" {setup.threads} torch thread(s) per model, {setup.cores} cores"
    )
    click.echo(
        f"  lstmq: one worker, --concurrency {concurrency}; Ray Data {ray_version}: {actors}, num_cpus {setup.cores}"
    )
    click.echo(
        "  timed: lstmq from the submit's start to the last result written (its worker already running);"
        " Ray from read_json to the end of write_sql (starting its actors and their model included)"
    )


def measure_round(number: int, setup: Peer, ray) -> tuple[float, float, float]:
    """One lstmq run and one Ray run, printed as they end: (lstmq docs/s, Ray docs/s, ratio)."""
    runs: list[Callable[[], Side]] = [partial(lstmq_side, setup), partial(ray_side, setup, ray)]
    click.echo(f"round {number + 1}")
    sides = {}
    for side in runs if number % 2 == 0 else runs[::-1]:
        done = side()
        click.echo(done.line())
        sides[done.name] = done.rate
    lstmq, ray_rate = sides["lstmq"], sides["Ray Data"]
    click.echo(f"  lstmq/Ray = {lstmq / ray_rate:.2f}")
    return lstmq, ray_rate, lstmq / ray_rate


def summary(rounds: list[tuple[float, float, float]]) -> str:
    spans = [(min(values), max(values)) for values in zip(*rounds, strict=True)]
    (l_lo, l_hi), (r_lo, r_hi), (q_lo, q_hi) = spans
    return (
        f"{len(rounds)} rounds: lstmq {l_lo:,.0f}-{l_hi:,.0f} docs/s, Ray Data {r_lo:,.0f}-{r_hi:,.0f} docs/s,"
        f" lstmq/Ray {q_lo:.2f}-{q_hi:.2f}"
    )


def lstmq_side(setup: Peer) -> Side:
    rate, _, _, _, cpu = counted_run(setup.run, setup.corpus, setup.batch_size)
    return Side("lstmq", rate, setup.docs / rate, lstmq_cpu(cpu, setup.docs))


def lstmq_cpu(use: cpu_usage.Usage | None, docs: int) -> str:
    return cpu_line(
        use,
        docs,
        lambda us: (
            f"producer {us(use.producer):,.0f} + worker {us(use.worker):,.0f}"
            f" = {us(use.producer + use.worker):,.0f} µs, database + broker + rest {us(use.rest):,.0f} µs"
        ),
    )


def cpu_line(use: cpu_usage.Usage | None, docs: int, parts: Callable[[Callable[[float], float]], str]) -> str:
    """A side's CPU per document: ``parts`` names its shares, given seconds -> µs per document."""
    if use is None:
        return "(CPU not measured: no /proc)"
    return f"CPU per document: {parts(lambda seconds: seconds / docs * 1e6)}; cores {use.busy_fraction:.0%} busy"


def ray_side(setup: Peer, ray) -> Side:
    """A fresh local Ray, warmed up by a batch through the same pipeline, then the timed run.
    Ray's processes are this one's (the driver's) descendants: its tree less lstmq's idle worker."""
    engine = setup.run.engine
    with result_table(engine) as table, ray_session(ray, setup.cores):
        write_labels(ray, setup, setup.warm_up, table)  # starts Ray's worker processes: not timed
        truncate(engine, table)
        meter = cpu_usage.SampledMeter(os.getpid(), exclude=setup.run.worker.pid)
        seconds = write_labels(ray, setup, setup.corpus, table)
        cpu = ray_cpu(meter.stop(), setup.docs)
        check_rows(engine, table, setup.docs)
    return Side("Ray Data", setup.docs / seconds, seconds, cpu)


def write_labels(ray, setup: Peer, corpus: Path, table: str) -> float:
    """Seconds from the start of the read to the end of the write."""
    import psycopg  # here: `lstmq --help` imports this module

    start = time.perf_counter()
    dataset = ray.data.read_json(str(corpus)).map_batches(
        Classify,
        fn_constructor_kwargs={"model_dir": str(get_settings().user_model_dir), "threads": setup.threads},
        batch_size=setup.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=setup.actors),
    )
    dataset.write_sql(f"INSERT INTO {table} (id, label) VALUES (%s, %s)", partial(psycopg.connect, setup.conninfo))
    return time.perf_counter() - start


def ray_cpu(use: cpu_usage.Usage | None, docs: int) -> str:
    return cpu_line(
        use,
        docs,
        lambda us: f"driver + Ray's processes {us(use.worker):,.0f} µs, database + rest {us(use.rest):,.0f} µs",
    )


@contextmanager
def ray_session(ray, cores: int) -> Iterator[None]:
    """A local Ray of ``cores`` CPUs on the loopback address, its files in a temporary folder,
    shut down after (also on Ctrl-C: its processes would outlive this one)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a bench reports nothing anywhere
    # A short folder under /tmp: Ray's Unix sockets live in it (at most 107 bytes to a path).
    with tempfile.TemporaryDirectory(prefix="lstmq-ray-", ignore_cleanup_errors=True) as folder:
        ray.init(
            num_cpus=cores,
            include_dashboard=False,
            logging_level=logging.WARNING,
            _temp_dir=folder,
            _node_ip_address="127.0.0.1",
        )
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset plan on stderr
            yield
        finally:
            ray.shutdown()


@contextmanager
def result_table(engine: Engine) -> Iterator[str]:
    """A fresh table for Ray's (id, label) rows, keyed by id as lstmq's results are by document;
    dropped after (after Ray is shut down: no writer of it is left to wait for)."""
    name = f"peer_bench_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, label TEXT)"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


def truncate(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table}"))


def check_rows(engine: Engine, table: str, docs: int) -> None:
    with engine.connect() as conn:
        written = conn.scalar(text(f"SELECT count(*) FROM {table}"))
    if written != docs:
        raise click.ClickException(f"Ray Data wrote {written:,} rows for {docs:,} documents")
