"""What the ML commands do, as plain functions (the click layer in ``cli.py`` only parses options)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from lstmq.errors import InputError
from lstmq.modelstore import valid_name, version_id
from lstmq.readers.formats import Item
from lstmq.readers.records import Record, Rejected
from lstmq.readers.sources import read_sources, resolve_sources
from worker.ml.classifier.artifact import save_artifact
from worker.ml.classifier.card import hardware, render_card
from worker.ml.classifier.config import TrainConfig
from worker.ml.classifier.data import read_labelled
from worker.ml.classifier.inference import load_classifier
from worker.ml.classifier.metrics import classification_report, summary
from worker.ml.classifier.train import Progress, train_classifier
from worker.ml.device import resolve_device
from worker.ml.weights import check_dtype

PREDICT_CHUNK = 4096  # records classified per call, bounds memory for huge input files


def train_and_save(
    name: str,
    train_file: Path,
    dev_file: Path,
    out: Path,
    cfg: TrainConfig,
    device: str,
    fields: tuple[str, str] = ("text", "label"),
    progress: Progress = lambda e: None,
    command: str = "",
    fmt: str | None = None,
) -> dict:
    """Train, write the artifact and its MODEL_CARD.md into ``out``; returns the dev report."""
    if not valid_name(name):
        raise InputError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (max 64)")
    check_dtype(cfg.weights_dtype)  # before training, not after an hour of it
    train, dev = read_labelled(train_file, *fields, fmt), read_labelled(dev_file, *fields, fmt)
    run_device = resolve_device(device)
    base = {
        "command": command,
        "train_file": str(train_file),
        "dev_file": str(dev_file),
        "train_rows": min(len(train), cfg.max_train_rows or len(train)),
        "dev_rows": len(dev),
        "train_counts": train.counts(),
        "dev_counts": dev.counts(),
        "data_fingerprint": train.fingerprint(),
        "hyperparameters": cfg.to_dict(),
        "hardware": hardware(run_device),
    }

    def save(result) -> None:  # after every ensemble member, so a long run has a usable model early
        training = {
            **base,
            "seconds": round(result.seconds, 1),
            "member_dev_accuracy": result.member_dev_accuracy,
            "members_trained": len(result.member_dev_accuracy),
        }
        extra = {"name": name, "training": training, "metrics": {"dev": summary(result.dev_report)}}
        save_artifact(out, result.model, result.tokenizer, result.labels, cfg.max_tokens, extra, cfg.weights_dtype)
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        card = render_card(name, version_id(out), config, result.dev_report, result.member_dev_accuracy)
        (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")

    return train_classifier(train, dev, cfg, run_device, progress, save).dev_report


def evaluate_file(
    model: str, file: Path, device: str = "auto", fields: tuple[str, str] = ("text", "label"), fmt: str | None = None
) -> dict:
    data = read_labelled(file, *fields, fmt)
    clf = load_classifier(model, device)
    preds = clf.predict(data.texts)
    report = classification_report(data.labels, [p.label for p in preds], clf.labels)
    report.update(model=clf.name, version=clf.version, file=str(file))
    return report


def predict_lines(model: str, file: Path, device: str = "auto", fmt: str | None = None) -> Iterator[str]:
    """JSON lines ``{"id", "label", "score"}`` (+ ``flags`` / ``error`` only when set), input order.

    Records come from the reader ``lstmq submit`` uses, so both read a file alike; ``id`` is the
    record's id, else its 0-based number among the file's records (as ``submit`` numbers it).
    """
    items = read_sources(resolve_sources([str(file)], fmt))  # input errors before the model loads
    clf = load_classifier(model, device)
    chunk = []
    for number, item in enumerate(items):
        chunk.append((number if item.external_id is None else item.external_id, item))
        if len(chunk) >= PREDICT_CHUNK:
            yield from _predict_chunk(clf, chunk)
            chunk = []
    yield from _predict_chunk(clf, chunk)


def _predict_chunk(clf, chunk: list[tuple[object, Item]]) -> Iterator[str]:
    preds = iter(clf.predict([item.text for _, item in chunk if isinstance(item, Record)]))
    for ident, item in chunk:
        if isinstance(item, Rejected):
            out = {"id": ident, "label": None, "score": None, "error": item.reason}
        else:
            out = _prediction(ident, next(preds))
        yield json.dumps(out, ensure_ascii=False)


def _prediction(ident: object, pred) -> dict:
    out = {"id": ident, "label": pred.label, "score": None if pred.score is None else round(pred.score, 6)}
    if pred.flags:
        out["flags"] = pred.flags
    if pred.error:
        out["error"] = pred.error
    return out


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
