"""The record formats: JSON Lines, CSV, plain-text lines, and folders of text files.

Each reader is a generator over a binary line stream (see ``lstmq.readers.streams``), so memory
stays bounded by one record whatever the input size. Bad records are yielded as
``Rejected`` with their line; only a problem with a whole input raises ``InputError``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lstmq.errors import InputError
from lstmq.readers.records import Fields, Record, Rejected, external_id_of, text_problem
from lstmq.readers.streams import decode, open_text_stream

# A CSV text field may hold a whole article; the csv module's default cap is 128 KiB.
csv.field_size_limit(256 * 1024 * 1024)

Item = Record | Rejected


def read_jsonl(stream: BinaryIO, name: str, fields: Fields = Fields()) -> Iterator[Item]:
    """One JSON object per line; blank lines are skipped."""
    record_no = 0
    for line_no, raw in enumerate(stream, 1):
        line = decode(raw, line_no == 1).strip()
        if not line:
            continue
        yield _json_record(line, name, line_no, record_no, fields)
        record_no += 1


def _json_record(line: str, name: str, line_no: int, record_no: int, fields: Fields) -> Item:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return Rejected(name, line_no, f"malformed JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Rejected(name, line_no, "malformed JSON (nested too deeply)")
    if not isinstance(obj, dict):
        return Rejected(name, line_no, "not a JSON object")
    return _record(obj.get(fields.text), obj.get(fields.id), name, line_no, record_no, fields)


def _record(text: object, ext: object, name: str, line_no: int, record_no: int, fields: Fields) -> Item:
    problem = text_problem(text, fields.text)
    external_id, id_problem = external_id_of(ext, fields.id)
    if problem or id_problem:
        return Rejected(name, line_no, problem or id_problem)
    return Record(text=text, external_id=external_id, source=name, line_no=line_no, record_no=record_no)


def read_lines(stream: BinaryIO, name: str, fields: Fields = Fields()) -> Iterator[Item]:
    """Plain text: one document per non-blank line."""
    record_no = 0
    for line_no, raw in enumerate(stream, 1):
        line = decode(raw, line_no == 1).rstrip("\r\n")
        if not line.strip():
            continue
        yield _record(line, None, name, line_no, record_no, fields)
        record_no += 1


def read_csv(stream: BinaryIO, name: str, fields: Fields = Fields()) -> Iterator[Item]:
    """CSV with a header row naming the columns; ``line_no`` is where a row starts."""
    lines = (decode(raw, i == 0) for i, raw in enumerate(stream))
    reader = csv.reader(lines)
    header = _csv_header(reader, name, fields)
    record_no, start = 0, reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Rejected(name, start, f"malformed CSV ({exc})")
        else:
            if row:
                yield _csv_record(row, header, name, start, record_no, fields)
                record_no += 1
        start = reader.line_num + 1


def _csv_header(reader, name: str, fields: Fields) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{name}:1: malformed CSV header ({exc})") from None
    if not header:
        raise InputError(f"{name}: empty CSV, expected a header row")
    if fields.text not in header:
        raise InputError(f"{name}: no column '{fields.text}' in the CSV header (columns: {', '.join(header)})")
    return header


def _csv_record(row: list[str], header: list[str], name: str, line_no: int, record_no: int, fields: Fields) -> Item:
    if len(row) != len(header):
        return Rejected(name, line_no, f"{len(row)} fields, the header has {len(header)}")
    values = dict(zip(header, row, strict=True))
    return _record(values[fields.text], values.get(fields.id) or None, name, line_no, record_no, fields)


def read_folder(folder: Path, name: str) -> Iterator[Item]:
    """One document per ``*.txt`` (or ``*.txt.gz``) file, walked in sorted order.

    The external id is the file's path relative to the folder, e.g. ``news/0001.txt``.
    """
    record_no = 0
    for path in _walk_text_files(folder):
        relative = path.relative_to(folder).as_posix()
        shown = os.path.join(name, relative)
        yield _folder_record(path, relative, shown, record_no)
        record_no += 1


def _walk_text_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.startswith(".") and file.lower().endswith((".txt", ".txt.gz")):
                yield Path(root) / file


def _folder_record(path: Path, relative: str, shown: str, record_no: int) -> Item:
    try:
        with path.open("rb") as raw:
            data = open_text_stream(raw, shown).read_all()
    except InputError as exc:
        return Rejected(shown, 1, str(exc).removeprefix(f"{shown}: "))
    except OSError as exc:
        return Rejected(shown, 1, f"cannot read ({exc.strerror})")
    text = decode(data, True)
    if not text.strip():
        return Rejected(shown, 1, "empty file")
    return _record(text, relative, shown, 1, record_no, Fields())


READERS = {"jsonl": read_jsonl, "csv": read_csv, "txt": read_lines}
