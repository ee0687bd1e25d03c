"""What eval and predict do, as plain functions (the click layer in ``cli.py`` only parses
options; training runs are in ``runs.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from lstmq.readers.formats import Item
from lstmq.readers.records import Record, Rejected
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.worker.ml.classifier.data import check_labels, read_labelled
from lstmq.worker.ml.classifier.inference import load_classifier
from lstmq.worker.ml.classifier.metrics import calibration_report, classification_report

PREDICT_CHUNK = 4096  # records classified per call, bounds memory for huge input files


def evaluate_file(
    model: str, file: Path, device: str = "auto", fields: tuple[str, str] = ("text", "label"), fmt: str | None = None
) -> dict:
    data = read_labelled(file, *fields, fmt)
    clf = load_classifier(model, device)
    check_labels(data, clf.labels, model)
    preds = clf.predict(data.texts)
    report = classification_report(data.labels, [p.label for p in preds], clf.labels)
    report["calibration"] = calibration_report(data.labels, clf.labels, [p.probs for p in preds])
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
