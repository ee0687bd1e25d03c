"""Records for ``lstmq predict``: JSONL, CSV/TSV or plain text (each optionally gzip).

Minimal on purpose (``lstmq.readers.sources`` did not exist yet when this was written). A bad record
never stops the file: it becomes a ``Record`` with ``error`` set, and keeps its place.

- JSONL: one object per non-blank line with a string ``text`` and an optional ``id``.
- CSV/TSV: a header row with a ``text`` column and an optional ``id`` column.
- anything else: one record per line (a blank line is a record with an empty text).

``id`` is the record's own id when present, else its 0-based record number.
Bytes that are not UTF-8 make that record fail with "undecodable bytes (not UTF-8)".
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lstmq.errors import InputError

UNDECODABLE = "undecodable bytes (not UTF-8)"


@dataclass
class Record:
    id: object
    text: str | None
    error: str | None = None


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    return {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(last, "txt")


def read_records(path: Path) -> Iterator[Record]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")
    # surrogateescape keeps bad bytes as lone surrogates, so they can be found per record.
    fh = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
    kind = _kind(path)
    try:
        with fh:
            if kind == "jsonl":
                yield from _jsonl(fh)
            elif kind in ("csv", "tsv"):
                yield from _csv(fh, path, "excel-tab" if kind == "tsv" else "excel")
            else:
                yield from _txt(fh)
    except (gzip.BadGzipFile, EOFError, OSError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None


def _bad_bytes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonl(fh) -> Iterator[Record]:
    number = 0
    for line in fh:
        if not line.strip():
            continue
        if _bad_bytes(line):
            yield Record(number, None, UNDECODABLE)
        else:
            yield _json_record(line, number)
        number += 1


def _json_record(line: str, number: int) -> Record:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return Record(number, None, f"invalid JSON ({exc.msg})")
    if not isinstance(obj, dict):
        return Record(number, None, "expected a JSON object")
    rid = obj.get("id", number)
    if not isinstance(obj.get("text"), str):
        return Record(rid, None, "no string 'text' field")
    return Record(rid, obj["text"])


def _csv(fh, path: Path, dialect: str) -> Iterator[Record]:
    reader = csv.DictReader(fh, dialect=dialect)
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise InputError(f"{path}: CSV needs a header row with a 'text' column")
    for number, row in enumerate(reader):
        rid = row.get("id") or number
        rid = number if _bad_bytes(str(rid)) else rid
        text = row.get("text")
        if text is None:
            yield Record(rid, None, "row has no 'text' value")
        elif _bad_bytes(text):
            yield Record(rid, None, UNDECODABLE)
        else:
            yield Record(rid, text)


def _txt(fh) -> Iterator[Record]:
    for number, line in enumerate(fh):
        text = line.rstrip("\r\n")
        yield Record(number, None, UNDECODABLE) if _bad_bytes(text) else Record(number, text)
