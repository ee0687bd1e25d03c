"""Do the quality estimates hold? For each shipped classifier on labelled in-domain text:
true accuracy on N documents, expected accuracy (mean calibrated top score, what
``lstmq quality`` reports before anyone reviews), and the agreement of a simulated reviewer who
answers the true label on a random review sample (the same keyed-hash order as
``lstmq review --mode random``), with its 95 % Wilson interval, over several sample seeds.

Run with ``lstmq bench quality --data DIR [--docs 2000] [--sample 300] [--seeds 20]``,
where DIR holds ``ag_news/``, ``sst2/`` and ``sms_spam/`` with ``dev.jsonl.gz`` (``{"text", "label"}``).
Classifies in-process (no database, no queue).
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import click

from lstmq.bench import options
from lstmq.errors import InputError
from lstmq.quality import sample_key, wilson
from lstmq.worker.ml.classifier.inference import load_classifier

DATASETS = {"news": "ag_news", "sentiment": "sst2", "spam": "sms_spam"}


def read_dev(path: Path, docs: int, seed: int = 0) -> list[dict]:
    """Up to ``docs`` rows of a gzip JSONL file, a seeded random choice when there are more."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return random.Random(seed).sample(rows, docs) if len(rows) > docs else rows


def measure(model: str, rows: list[dict], sample: int, seeds: int) -> dict:
    """True accuracy, expected accuracy, and agreement of ``seeds`` random review samples."""
    predictions = load_classifier(model).predict([row["text"] for row in rows])
    right = [p.label == row["label"] for p, row in zip(predictions, rows, strict=True)]
    accuracy = sum(right) / len(right)
    samples = []
    for seed in range(seeds):
        order = sorted(range(len(rows)), key=lambda i: sample_key(f"bench-{seed}", i))[:sample]
        kept = sum(right[i] for i in order)
        low, high = wilson(kept, len(order))
        samples.append({"agreement": kept / len(order), "low": low, "high": high})
    return {
        "model": model,
        "docs": len(rows),
        "accuracy": accuracy,
        "expected_accuracy": sum(p.score for p in predictions) / len(predictions),
        "first_sample": samples[0],
        "within_3_points": sum(abs(s["agreement"] - accuracy) <= 0.03 for s in samples),
        "covered": sum(s["low"] <= accuracy <= s["high"] for s in samples),
        "seeds": seeds,
    }


def dev_files(data: Path, models: list[str]) -> dict[str, Path]:
    """Each model's labelled file under ``data``, all checked before the first one is read."""
    if not data.is_dir():
        raise InputError(f"--data {data}: no such folder")
    files = {}
    for model in models:
        if model not in DATASETS:
            raise InputError(f"no labelled data known for model {model!r} (expected {', '.join(DATASETS)})")
        files[model] = data / DATASETS[model] / "dev.jsonl.gz"
        if not files[model].is_file():
            raise InputError(f"{files[model]}: no such file (--data holds {', '.join(DATASETS.values())})")
    return files


@click.command("quality")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Labelled data folder.")
@options.docs(2000, "Labelled documents per classifier.")
@click.option("--sample", type=click.IntRange(1), default=300, show_default=True, help="Reviewed documents.")
@click.option("--seeds", type=click.IntRange(1), default=20, show_default=True, help="Review samples drawn.")
@click.option("--models", default=",".join(DATASETS), show_default=True)
def quality(data, docs, sample, seeds, models) -> None:
    """Do the quality estimates hold? One JSON line per classifier."""
    for model, path in dev_files(data, models.split(",")).items():
        rows = read_dev(path, docs)
        click.echo(json.dumps(measure(model, rows, min(sample, len(rows)), seeds)))
