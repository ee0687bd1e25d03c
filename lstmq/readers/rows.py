"""Rows: what each format's lines parse into, before any field is checked.

A row is a mapping of field names to values (a JSON object, a CSV/TSV row keyed by its
header, a text line under the text field's name). Records for ``submit``/``predict`` and
labelled rows for training are both built from rows, so every reader parses alike. Blank
lines are skipped in every format. A line that cannot be parsed is yielded as ``Rejected``;
only a problem with the whole input raises ``InputError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from lstmq.errors import InputError
from lstmq.readers.records import Rejected
from lstmq.readers.streams import MAX_LINE_BYTES, OverlongLine, decode

# A CSV text field may hold a whole article (the csv module's default cap is 128 KiB); an
# unclosed quote must not gather the rest of the file into one field.
csv.field_size_limit(MAX_LINE_BYTES)


@dataclass(frozen=True, slots=True)
class Row:
    source: str
    line_no: int  # 1-based line where the row starts
    values: dict


Line = bytes | OverlongLine


def read_rows(lines: Iterable[Line], name: str, fmt: str, fields: Sequence[str]) -> Iterator[Row | Rejected]:
    """Rows of one input in format ``fmt``. ``fields`` are those a row must have, the text
    first: a CSV/TSV header without one is refused whole; a text line is put under the first."""
    if fmt == "jsonl":
        return _jsonl_rows(lines, name)
    if fmt == "txt":
        return _text_rows(lines, name, fields[0])
    return _csv_rows(lines, name, fields, "excel-tab" if fmt == "tsv" else "excel")


def refuse_json_array(head: bytes, name: str) -> None:
    """JSON Lines is one object per line; an array of them would only give per-line errors.
    ``head``: the input's first bytes (a whole-input check, made where an input is opened)."""
    if decode(head, True).lstrip().startswith("["):
        raise InputError(f"{name}: a JSON array is not JSON Lines; convert it with: jq -c '.[]' {name}")


def _jsonl_rows(lines: Iterable[Line], name: str) -> Iterator[Row | Rejected]:
    for line_no, raw in enumerate(lines, 1):
        if isinstance(raw, OverlongLine):
            yield Rejected(name, line_no, raw.reason)
            continue
        line = decode(raw, line_no == 1).strip()
        if line:
            yield _json_row(line, name, line_no)


def _json_row(line: str, name: str, line_no: int) -> Row | Rejected:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return Rejected(name, line_no, f"malformed JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Rejected(name, line_no, "malformed JSON (nested too deeply)")
    if not isinstance(obj, dict):
        return Rejected(name, line_no, "not a JSON object")
    return Row(name, line_no, obj)


def _text_rows(lines: Iterable[Line], name: str, text_field: str) -> Iterator[Row | Rejected]:
    for line_no, raw in enumerate(lines, 1):
        if isinstance(raw, OverlongLine):
            yield Rejected(name, line_no, raw.reason)
            continue
        line = decode(raw, line_no == 1).rstrip("\r\n")
        if line.strip():
            yield Row(name, line_no, {text_field: line})


def _csv_rows(lines: Iterable[Line], name: str, fields: Sequence[str], dialect: str) -> Iterator[Row | Rejected]:
    source = _CsvLines(lines)
    reader = csv.reader(source, dialect)
    header = _csv_header(reader, name, fields)
    start = source.line_no + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except _Overlong as exc:  # the reader drops the row it was in and reads on
            yield Rejected(name, start, exc.line.reason)
        except csv.Error as exc:
            yield Rejected(name, start, f"malformed CSV ({exc})")
        else:
            if row:  # a blank line
                yield _csv_row(row, header, name, start, fields)
        start = source.line_no + 1


class _Overlong(Exception):
    def __init__(self, line: OverlongLine):
        self.line = line


class _CsvLines:
    """Decoded lines for ``csv.reader``, counted here (the reader does not count a line that
    raised); an overlong line raises ``_Overlong`` through the reader, which can go on after."""

    def __init__(self, lines: Iterable[Line]):
        self._lines, self.line_no = iter(lines), 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.line_no += 1
        if isinstance(raw, OverlongLine):
            raise _Overlong(raw)
        return decode(raw, self.line_no == 1)


def _csv_header(reader, name: str, fields: Sequence[str]) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{name}:1: malformed CSV header ({exc})") from None
    except _Overlong as exc:
        raise InputError(f"{name}:1: CSV header is a {exc.line.reason}") from None
    if not header:
        raise InputError(f"{name}: empty CSV, expected a header row")
    for field in fields:
        if field not in header:
            raise InputError(f"{name}: no column '{field}' in the CSV header (columns: {', '.join(header)})")
    return header


def _csv_row(row: list[str], header: list[str], name: str, line_no: int, fields: Sequence[str]) -> Row | Rejected:
    if len(row) != len(header):
        return Rejected(name, line_no, f"{len(row)} fields, the header has {len(header)}")
    # An empty cell is the only way CSV can leave a value out (e.g. an id): absent, unless required.
    return Row(name, line_no, {k: v for k, v in zip(header, row, strict=True) if v or k in fields})
