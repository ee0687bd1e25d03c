"""``lstmq bench end-to-end``: how much of a model's speed survives the queue, measured in one run.

(a) the model alone, in this process, batched; (b) end to end: producer → broker → a real
worker process → database, batches of ``--batch-size``; (c) the same with one document per
message. Prints the rates and the ratios b/a (pipeline overhead) and b/c (what batching buys).

``--task classify`` (default) counts documents classified; ``--task render`` counts images: (a)
is generation alone, (b) and (c) include PNG encoding, the files and the database rows.
"""

from __future__ import annotations

import click

from lstmq.bench import options
from lstmq.bench.harness import (
    generate_captions,
    generate_texts,
    inprocess_rate,
    pipeline,
    pipeline_rate,
    worker_args,
)
from lstmq.errors import InputError
from lstmq.producer.submit import check_model
from lstmq.readers.records import Record
from lstmq.readers.sources import read_sources, resolve_sources

DEFAULT_MODELS = {"classify": "news", "render": "shapes"}


def bench_texts(task: str, n: int, input_path: str | None) -> list[str]:
    if input_path:
        texts = [item.text for item in read_sources(resolve_sources([input_path])) if isinstance(item, Record)][:n]
        if not texts:
            raise InputError(f"{input_path}: no usable text records")
        return texts
    if task == "render":
        return generate_captions(n)
    return generate_texts(n)


@click.command("end-to-end")
@options.docs(20_000, "Documents for (a) and (b).")
@click.option(
    "--single-docs",
    type=click.IntRange(min=1),
    default=2_000,
    show_default=True,
    help="Documents for (c), one per message (a rate, so fewer suffice).",
)
@options.input_path("Texts to use (JSONL/CSV/TXT) instead of generated AG-News-like ones.")
@click.option(
    "--task",
    type=click.Choice(list(DEFAULT_MODELS)),
    default="classify",
    show_default=True,
    help="render: images/s of an image generator, PNG files and rows included end to end.",
)
@click.option("--model", help="Model to run  [default: news for classify, shapes for render]")
@options.batch_size()
@options.device()
@options.threads()
@options.concurrency()
@options.redis_url()
@options.database_url()
def end_to_end(
    docs, single_docs, input_path, task, model, batch_size, device, threads, concurrency, redis_url, database_url
) -> None:
    """A model alone vs. end to end, batched vs. one per message.

    (a) the model in this process, (b) through the broker, a worker and the database in batches
    of --batch-size, (c) the same with one document per message; the ratios b/a and b/c."""
    model = model or DEFAULT_MODELS[task]
    check_model(task, model)  # installed, and of the task's kind: before any service is touched
    options.check_input(input_path)
    options.check_services(database_url, redis_url)
    args = worker_args(task, device, concurrency, threads)
    texts = bench_texts(task, docs, input_path)
    click.echo(
        f"{len(texts)} documents, task {task}, model {model}, batch {batch_size}, device {device},"
        f" worker concurrency {concurrency}"
    )
    bench_model(task, model, texts, single_docs, batch_size, device, args, redis_url, database_url)


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
