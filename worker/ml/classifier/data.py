"""Labelled training/evaluation data: JSONL or CSV (optionally gzip) with a text and a label field."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from lstmq.errors import InputError


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


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return "csv" if suffixes and suffixes[-1] in (".csv", ".tsv") else "jsonl"


def read_labelled(path: Path, text_field: str = "text", label_field: str = "label") -> Labelled:
    """All rows; a row without both fields is an InputError naming FILE:LINE."""
    texts, labels = [], []
    try:
        with _open_text(path) as fh:
            rows = _csv_rows(fh, path) if _format(path) == "csv" else _jsonl_rows(fh, path)
            for where, row in rows:
                text, label = row.get(text_field), row.get(label_field)
                if not isinstance(text, str) or label is None or isinstance(label, (dict, list)):
                    raise InputError(f"{path}:{where}: needs a string {text_field!r} and a {label_field!r}")
                texts.append(text)
                labels.append(str(label))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    if not texts:
        raise InputError(f"{path}: no rows")
    return Labelled(texts, labels, str(path))


def _jsonl_rows(fh, path: Path):
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object")
        yield number, row


def _csv_rows(fh, path: Path):
    dialect = "excel-tab" if ".tsv" in [s.lower() for s in path.suffixes] else "excel"
    reader = csv.DictReader(fh, dialect=dialect)
    for row in reader:
        yield reader.line_num, row
