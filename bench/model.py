"""Model speed: docs/s for each classifier one document at a time and batched, and the ratio.

Both paths run in the same process on the same texts, interleaved, best of three rounds each,
so the ratio is a fair comparison even on a loaded machine.
Run with ``lstmq bench model [--models news,spam] [--docs 2000]`` (``lstmq bench end-to-end``
measures the model through the whole pipeline instead).
Texts come from ``--input`` (JSONL/CSV/txt with a text field) or, without one, are sampled
from the model's own vocabulary (seeded), 10-60 words each.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from lstmq.bench import options
from lstmq.modelstore import installed_models
from lstmq.producer.submit import check_model
from lstmq.readers.records import Record
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.worker.ml.classifier.inference import load_classifier

DEFAULT_DOCS = 2000
SINGLE_DOCS = 300  # batch-1 path is slow; fewer docs keep the run short
ROUNDS = 3  # best of N: a shared machine's load spikes only ever slow a run down


def sample_texts(clf, n: int, seed: int = 0) -> list[str]:
    # decode() turns BPE pieces ("Ġword") back into text; keep whole alphabetic words only
    decoded = (clf.tokenizer.decode([i]).strip() for i in range(2, clf.tokenizer.get_vocab_size()))
    vocab = sorted({w for w in decoded if w.isalpha()})
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocab, k=rng.randint(10, 60))) for _ in range(n)]


def _docs_per_s(run, texts: list[str]) -> float:
    started = time.perf_counter()
    run(texts)
    return len(texts) / (time.perf_counter() - started)


def bench_one(clf, texts: list[str], single_docs: int = SINGLE_DOCS, rounds: int = ROUNDS) -> dict:
    """Best of ``rounds`` interleaved timings per path, so both see the same machine load."""
    clf.predict(texts[:64])  # warm-up: allocator, thread pool
    singles, batched = [], []
    for _ in range(rounds):
        singles.append(_docs_per_s(lambda ts: [clf.predict([t]) for t in ts], texts[: single_docs // rounds]))
        batched.append(_docs_per_s(clf.predict, texts))
    return {
        "model": clf.name,
        "version": clf.version,
        "device": str(clf.device),
        "docs": len(texts),
        "batch": clf.batch_docs,
        "batch1_docs_s": max(singles),
        "batched_docs_s": max(batched),
        "ratio": max(batched) / max(singles),
    }


def bench_models(
    names: list[str] | None = None, docs: int = DEFAULT_DOCS, file: Path | None = None, device: str = "auto"
) -> list[dict]:
    names = names or [m.name for m in installed_models() if m.kind == "classifier"]
    given = [r.text for r in read_sources(resolve_sources([str(file)])) if isinstance(r, Record)] if file else None
    rows = []
    for name in names:
        clf = load_classifier(name, device)
        texts = (given * (docs // max(1, len(given)) + 1))[:docs] if given else sample_texts(clf, docs)
        rows.append(bench_one(clf, texts))
    return rows


def print_bench(rows: list[dict]) -> None:
    table = Table(
        "model",
        "device",
        "docs",
        "batch 1 docs/s",
        "batched docs/s",
        "batch",
        "ratio",
        title=f"classifier speed (torch threads {torch.get_num_threads()})",
    )
    for r in rows:
        table.add_row(
            r["model"],
            r["device"],
            str(r["docs"]),
            f"{r['batch1_docs_s']:.0f}",
            f"{r['batched_docs_s']:.0f}",
            str(r["batch"]),
            f"{r['ratio']:.1f}x",
        )
    Console().print(table)


@click.command("model")
@click.option("--models", "names", help="Comma-separated names  [default: every installed classifier]")
@options.docs(DEFAULT_DOCS, "Documents for the batched path.")
@options.input_path("Texts to use (JSONL/CSV/TXT) instead of words sampled from each model's vocabulary.")
@options.device()
@options.threads("torch CPU threads.")
def model(names, docs, input_path, device, threads):
    """Each classifier alone: docs/s at batch 1 vs. batched."""
    names = names.split(",") if names else None
    for name in names or []:
        check_model("classify", name)  # every name, before the first one is timed
    file = options.check_input(input_path)
    if threads:
        torch.set_num_threads(threads)
    print_bench(bench_models(names, docs, file, device))
