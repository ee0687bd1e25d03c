"""Labelled training/evaluation data: rows of any input format with a text and a label field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lstmq.errors import InputError
from lstmq.readers.records import Rejected, storable_problem, text_problem
from lstmq.readers.rows import Row
from lstmq.readers.sources import read_input_rows


@dataclass
class Labelled:
    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """sha256 (16 hex) over (text, label) rows in order: identifies the training data."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(json.dumps([text, label]).encode())
            digest.update(b"\n")
        return digest.hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for label in self.labels:
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))


def read_labelled(path: Path, text_field: str = "text", label_field: str = "label", fmt: str | None = None) -> Labelled:
    """All rows of a labelled file, in any format ``lstmq submit`` reads. The first bad row is
    an InputError naming FILE:LINE: a model trained on part of a file would hide the problem."""
    texts, labels = [], []
    for row in read_input_rows(str(path), (text_field, label_field), fmt):
        text, label = _labelled(row, text_field, label_field)
        texts.append(text)
        labels.append(label)
    if not texts:
        raise InputError(f"{path}: no rows")
    return Labelled(texts, labels, str(path))


def check_labels(data: Labelled, labels: list[str], model: str) -> None:
    """Refuse gold labels the model cannot predict (a label mapping mistake): scoring them would
    only count every such row wrong, without a word."""
    unknown = sorted(set(data.labels) - set(labels))
    if unknown:
        raise InputError(f"{data.source}: labels the model {model!r} does not know: {unknown} (it has {labels})")


def _labelled(row: Row | Rejected, text_field: str, label_field: str) -> tuple[str, str]:
    if isinstance(row, Rejected):
        raise InputError(str(row))
    text, label = row.values.get(text_field), row.values.get(label_field)
    problem = text_problem(text, text_field) or _label_problem(label, label_field)
    if problem:
        raise InputError(f"{row.source}:{row.line_no}: {problem}")
    return text, str(label)


def _label_problem(label: object, field: str) -> str | None:
    if label is None:
        return f"missing label field '{field}'"
    if isinstance(label, (dict, list)):
        return f"label field '{field}' must be a string or a number"
    return storable_problem(str(label), "label")
