"""``lstmq bench reuse``: what result reuse saves when a corpus is submitted again.

One worker process, the given database and broker. The corpus is submitted twice: first with
reuse off, so the model runs on every document whatever the database already holds; then
again with reuse on, so every document finds the first run's result. Each run is timed from
the start of its submit to its stored ``finished_at``; both jobs are deleted afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from lstmq.bench import options
from lstmq.bench.end_to_end import bench_texts
from lstmq.bench.harness import Bench, delete_job, pipeline, wait_done, worker_args
from lstmq.bench.materials import write_corpus
from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.producer.submit import check_model, submit_records
from lstmq.readers.sources import read_sources, resolve_sources


@dataclass(frozen=True)
class Run:
    """One submission of the corpus: seconds to its end, to its submit's return, and its counts."""

    seconds: float
    submit_seconds: float
    done: int
    reused: int
    job_id: str

    def line(self, name: str) -> str:
        rate = self.done / self.seconds if self.seconds else float("inf")
        return (
            f"{name:<22} {self.seconds:7.2f} s  ({rate:9,.0f} docs/s; submit returned after "
            f"{self.submit_seconds:.2f} s)  done {self.done:,}, reused {self.reused:,}"
        )


def timed_run(bench: Bench, corpus: Path, model: str, batch_size: int, reuse: bool) -> Run:
    """Submit ``corpus`` as ``lstmq submit`` reads it and wait for the job's end."""
    items = read_sources(resolve_sources([str(corpus)]))
    start = datetime.now(UTC)
    clock = time.perf_counter()
    report = submit_records(
        bench.engine, bench.app, items, task="classify", model=model, batch_size=batch_size, reuse=reuse
    )
    submitted = time.perf_counter() - clock
    wait_done(bench.engine, report.job_id, bench.worker)
    with session_scope(bench.engine) as session:
        job = session.get(Job, report.job_id)
        finished = job.finished_at if job.finished_at.tzinfo else job.finished_at.replace(tzinfo=UTC)
        return Run((finished - start).total_seconds(), submitted, job.done_count, job.reused_count, job.id)


@click.command("reuse")
@options.docs(20_000, "Documents in the corpus.")
@options.input_path("Texts to use (JSONL/CSV/TXT, gzip or not) instead of generated AG-News-like ones.")
@click.option("--model", default="news", show_default=True, help="An installed classifier.")
@options.batch_size()
@options.device()
@options.threads()
@options.concurrency()
@options.redis_url()
@options.database_url("Database (schema upgraded; the bench's jobs are deleted after).")
def reuse(docs, input_path, model, batch_size, device, threads, concurrency, redis_url, database_url) -> None:
    """Submit the same corpus twice (the model, then reuse) and print both times and their ratio."""
    options.check_input(input_path)
    check_model("classify", model)
    options.check_services(database_url, redis_url)
    texts = bench_texts("classify", docs, input_path)
    with pipeline(redis_url, database_url, worker_args("classify", device, concurrency, threads)) as bench:
        corpus = write_corpus(bench.home / "corpus.jsonl", texts)
        runs = []
        try:
            runs.append(timed_run(bench, corpus, model, batch_size, reuse=False))
            runs.append(timed_run(bench, corpus, model, batch_size, reuse=True))
        finally:
            for run in runs:
                delete_job(bench.engine, run.job_id)
    first, again = runs
    click.echo(f"{len(texts):,} documents, model {model}, batch {batch_size}")
    click.echo(first.line("first run (the model)"))
    click.echo(again.line("again (reused)"))
    click.echo(f"again / first = {again.seconds / first.seconds:.3f}  ({first.seconds / again.seconds:.1f}x faster)")
