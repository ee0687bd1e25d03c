"""What ``lstmq bench pipeline`` and ``fairness`` need beside the bench itself: a minimal classifier, a corpus
file, and the stage table.

The minimal classifier is trained on the fly from the sample corpus (label: the sample file a
sentence comes from) into the bench's temporary folder, so it is never installed and costs
next to nothing to run: what remains of the end-to-end time is lstmq's own cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from lstmq import stages
from lstmq.bench import cpu_usage
from lstmq.settings import SAMPLES_DIR

MINIMAL_MODEL = "pipeline-minimal"
SAMPLE_LABELS = ("news", "reviews", "sms")  # lstmq/samples/NAME.jsonl
# As small as the trainer allows: a few thousand parameters, 8 tokens per document.
MINIMAL_TRAINING = (
    "--vocab-size=2000 --min-frequency=1 --max-tokens=8 --embed-dim=8 --hidden-dim=4"
    " --epochs=1 --threads=1 --no-calibrate --device=cpu"
).split()
PRODUCER_STAGES = ("read", "hash", "record", "send")
# "model" is the whole prediction (tokenizing included); "tokenize" is that part of it alone.
# "dispatch" is the worker's dispatcher sending batches (the submit sends only a first window).
WORKER_STAGES = ("dispatch", "receive", "read state", "model", "tokenize", "write results")


def train_minimal_classifier(model_dir: Path) -> None:
    """``lstmq train classifier`` on the samples, writing ``model_dir/MINIMAL_MODEL`` (the labelled
    samples beside ``model_dir``)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    corpus = model_dir.parent / "samples.jsonl"
    with corpus.open("w") as out:
        for label in SAMPLE_LABELS:
            for line in (SAMPLES_DIR / f"{label}.jsonl").read_text().splitlines():
                out.write(json.dumps({"text": json.loads(line)["text"], "label": label}) + "\n")
    argv = ["train", "classifier", f"--name={MINIMAL_MODEL}", f"--train={corpus}", f"--dev={corpus}"]
    env = {**os.environ, "LSTMQ_MODEL_DIR": str(model_dir)}
    done = subprocess.run([sys.executable, "-m", "lstmq", *argv, *MINIMAL_TRAINING], env=env, capture_output=True)
    if done.returncode != 0:
        raise click.ClickException(f"training the minimal classifier failed: {done.stderr.decode()[-2000:]}")


def write_corpus(path: Path, texts: Iterable[str], ids: bool = False) -> Path:
    """The texts as JSON Lines, written as they come (a million texts never sit in memory).
    ``ids``: each line also carries its line number as ``id``, for readers that keep no line
    numbers (Ray Data's ``read_json``)."""
    with path.open("w") as out:
        for number, text in enumerate(texts, 1):
            out.write(json.dumps({"id": number, "text": text} if ids else {"text": text}) + "\n")
    return path


def stage_lines(side: str, names: tuple[str, ...], counted: dict[str, stages.Stage]) -> list[str]:
    """One line per stage the code counted: docs/s while in that stage, and its seconds."""
    lines = [
        f"    {side:8} {name:14} {counted[name].rate:12,.0f} docs/s  ({counted[name].seconds:6.1f} s)"
        for name in names
        if name in counted
    ]
    return lines or [f"    {side:8} (no stage counters reported)"]


def since(after: dict[str, stages.Stage], before: dict[str, stages.Stage]) -> dict[str, stages.Stage]:
    """What was counted between two readings of the same counters."""
    zero = stages.Stage()
    return {
        name: stages.Stage(now.items - before.get(name, zero).items, now.seconds - before.get(name, zero).seconds)
        for name, now in after.items()
        if now.items > before.get(name, zero).items
    }


def slowest(counted: dict[str, stages.Stage]) -> str:
    name = min(counted, key=lambda stage: counted[stage].rate)
    return f"slowest stage: {name} ({counted[name].rate:,.0f} docs/s)"


def model_cpu(a: float, cpu_per_document: float) -> str:
    """The model's own CPU per document beside 1/a, for the (a) line (they agree with one thread
    on an idle core): what the worker's CPU per document in (p) is set against."""
    return f"(the model's own CPU: {cpu_per_document * 1e6:,.1f} µs per document; 1/a = {1e6 / a:,.1f} µs)"


def report_pipeline(
    p: float,
    p_submit: float,
    a: float,
    producer: dict,
    worker: dict,
    cpu: cpu_usage.Usage | None,
    model_cpu_per_document: float,
) -> None:
    """(p) with its ratio to (a), each side's stages, the slowest of them, and the CPU each party
    used per document (what bounds the rate)."""
    submitted = producer["record"].items
    click.echo(
        f"(p) end to end, {submitted:,} documents: {p:12,.0f} docs/s  (the submit returned after {p_submit:.1f} s,"
        f" {submitted / p_submit:,.0f} docs/s; p/a = {p / a:.2f})"
    )
    for line in stage_lines("producer", PRODUCER_STAGES, producer) + stage_lines("worker", WORKER_STAGES, worker):
        click.echo(line)
    click.echo(f"    {slowest({**producer, **worker})}")
    for line in cpu_usage.report_lines(cpu, submitted, model_cpu_per_document):
        click.echo(line)
