"""``lstmq bench pipeline``: lstmq's own cost, measured in one run.

(a) and (p), end to end, for a minimal classifier whose cost is negligible
(``lstmq.bench.materials``), with the docs/s of each stage as the code counted them
(``lstmq.stages``) on both sides, so the output names the next bottleneck, and the CPU that the
producer, the worker and the rest of the machine spent per document.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from lstmq import stages
from lstmq.bench import cpu_usage, options
from lstmq.bench.harness import (
    POLL_S,
    Bench,
    delete_job,
    generate_texts,
    inprocess_rate,
    iter_texts,
    pipeline,
    pipeline_rate,
    timed_job,
    worker_args,
)
from lstmq.bench.materials import MINIMAL_MODEL, model_cpu, report_pipeline, since, write_corpus
from lstmq.readers.sources import read_sources, resolve_sources

INPROCESS_DOCS = 20_000  # (a): a rate, so a sample of --docs suffices


@click.command("pipeline")
@options.docs(20_000, "Documents end to end.")
@options.input_path("Texts to submit (JSONL/CSV/TXT) instead of generated AG-News-like ones.")
@options.batch_size()
@options.device()
@options.threads()
@options.concurrency()
@options.redis_url()
@options.database_url()
@click.option(
    "--no-reuse", "no_reuse", is_flag=True, help="Submit as `lstmq submit --no-reuse`: no lookup of results to reuse."
)
def pipeline_command(
    docs, input_path, batch_size, device, threads, concurrency, redis_url, database_url, no_reuse
) -> None:
    """lstmq's own cost, with a minimal classifier end to end.

    Prints docs/s of the model alone (a) and end to end (p), per stage on both sides, and the CPU
    per document of the producer, the worker and the rest of the machine."""
    corpus = options.check_input(input_path)
    options.check_services(database_url, redis_url)
    args = worker_args("classify", device, concurrency, threads)
    click.echo(f"pipeline: minimal classifier, batch {batch_size}, device {device}")
    with pipeline(redis_url, database_url, args, minimal_model=True) as run:
        a, a_cpu = model_alone(generate_texts(min(docs, INPROCESS_DOCS)), batch_size, device)
        click.echo(f"(a) model in-process, batched:     {a:12,.0f} docs/s  {model_cpu(a, a_cpu)}")
        corpus = corpus or write_corpus(run.home / "corpus.jsonl", iter_texts(docs))
        pipeline_rate(run, "classify", MINIMAL_MODEL, generate_texts(batch_size), batch_size)  # warm-up
        p, p_submit, producer, worker, cpu = counted_run(run, corpus, batch_size, reuse=not no_reuse)
    report_pipeline(p, p_submit, a, producer, worker, cpu, a_cpu)


def model_alone(texts: list[str], batch_size: int, device: str) -> tuple[float, float]:
    """(a) for the minimal classifier, and the CPU seconds per document this process spent on it:
    1/a on one idle core, more when threads add up, less of it when other processes take turns."""
    inprocess_rate("classify", MINIMAL_MODEL, texts[:batch_size], batch_size, device)  # imports: not (a)
    start = time.process_time()
    a = inprocess_rate("classify", MINIMAL_MODEL, texts, batch_size, device)
    return a, (time.process_time() - start) / len(texts)


def counted_run(
    run: Bench, corpus: Path, batch_size: int, reuse: bool = True
) -> tuple[float, float, dict, dict, cpu_usage.Usage | None]:
    """(p) as ``timed_submit`` gives it, what each side's stage counters counted meanwhile, and
    the CPU that the producer, the worker and the rest of the machine used meanwhile (None
    without /proc). The job is deleted after the CPU reading: deleting is no part of (p)."""
    worker_before = stages.collect(run.home / "stages")
    stages.reset()
    items = read_sources(resolve_sources([str(corpus)]))
    meter = cpu_usage.Meter(run.worker.pid)
    p, p_submit, job_id = timed_job(run, "classify", MINIMAL_MODEL, items, batch_size, reuse=reuse)
    cpu = meter.stop()
    delete_job(run.engine, job_id)
    time.sleep(POLL_S)  # the worker flushes its counters just after committing its last batch
    return p, p_submit, stages.snapshot(), since(stages.collect(run.home / "stages"), worker_before), cpu
