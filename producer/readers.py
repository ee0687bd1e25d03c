"""Input readers: JSONL, CSV, text (one document per line, or per file in a folder), stdin.

Every reader is a generator over a binary stream, so memory stays bounded by one record
whatever the input size. Gzip is detected by its magic bytes, not by the file name. Readers
yield ``Record`` or ``Rejected`` (see ``producer.records``); only problems with a whole input
(missing, binary, unknown format, no text column) raise ``InputError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lstmq.errors import InputError
from producer.records import STDIN_NAME, Record, Rejected, external_id_of, text_problem

FORMATS = ("jsonl", "csv", "txt")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".txt": "txt"}
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192  # a NUL in the first 8 KiB (after gunzip) means a binary file
READ_BUFFER_BYTES = 1 << 16
# A CSV text field may hold a whole article; the csv module's default cap is 128 KiB.
csv.field_size_limit(256 * 1024 * 1024)

Item = Record | Rejected


@dataclass(frozen=True)
class Fields:
    text: str = "text"
    id: str = "id"


@dataclass(frozen=True)
class Source:
    """One input as the user named it, with its resolved format."""

    name: str  # as shown in FILE:LINE messages
    path: Path | None  # None for stdin
    format: str


def resolve_sources(inputs: Sequence[str], fmt: str | None = None) -> list[Source]:
    """Check every input before anything is recorded: exists, and has a known format."""
    if not inputs:
        raise InputError("no input given (name files, a folder, or - for stdin)")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected {', '.join(FORMATS)})")
    if list(inputs).count("-") > 1:
        raise InputError("stdin (-) can be read only once")
    return [_resolve(name, fmt) for name in inputs]


def _resolve(name: str, fmt: str | None) -> Source:
    if name == "-":
        return Source(STDIN_NAME, None, fmt or "jsonl")
    path = Path(name)
    if path.is_dir():
        if fmt not in (None, "txt"):
            raise InputError(f"{name}: a folder is read as .txt files, not as {fmt}")
        return Source(name, path, "folder")
    if not path.exists():
        raise InputError(f"{name}: no such file or directory")
    if not path.is_file():
        raise InputError(f"{name}: not a regular file")
    return Source(name, path, fmt or _format_from_name(path))


def _format_from_name(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise InputError(f"{path}: cannot tell the format from the name; pass --format ({', '.join(FORMATS)})")
    return found


def read_sources(sources: Sequence[Source], fields: Fields = Fields(), stdin: BinaryIO | None = None) -> Iterator[Item]:
    """All records of all sources, in order."""
    for source in sources:
        if source.format == "folder":
            yield from read_folder(source.path, source.name)
            continue
        with _open_source(source, stdin) as stream:
            yield from READERS[source.format](stream, source.name, fields)


@contextmanager
def _open_source(source: Source, stdin: BinaryIO | None) -> Iterator[BinaryIO]:
    if source.path is None:
        yield open_text_stream(stdin or sys.stdin.buffer, source.name)
        return
    try:
        raw = source.path.open("rb")
    except OSError as exc:
        raise InputError(f"{source.name}: cannot open ({exc.strerror})") from None
    with raw:
        yield open_text_stream(raw, source.name)


def open_text_stream(raw: BinaryIO, name: str) -> BinaryIO:
    """``raw`` gunzipped when it starts with the gzip magic; refuses binary content."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw, READ_BUFFER_BYTES)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        buffered = io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), READ_BUFFER_BYTES)
    try:
        head = buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: unreadable ({exc})") from None
    if b"\x00" in head:
        raise InputError(f"{name}: binary file, not text")
    return _GuardedStream(buffered, name)


class _GuardedStream:
    """Line iteration whose mid-stream failures (corrupt gzip, I/O) become one InputError."""

    def __init__(self, stream: BinaryIO, name: str):
        self._stream, self._name = stream, name

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self._name}: unreadable ({exc})") from None

    def read_all(self) -> bytes:
        try:
            return self._stream.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self._name}: unreadable ({exc})") from None


def _decode(raw: bytes, first: bool) -> str:
    # surrogateescape keeps bad bytes visible to the field checks instead of failing the file.
    line = raw.decode("utf-8", "surrogateescape")
    return line.removeprefix("\ufeff") if first else line


def read_jsonl(stream: BinaryIO, name: str, fields: Fields = Fields()) -> Iterator[Item]:
    """One JSON object per line; blank lines are skipped."""
    record_no = 0
    for line_no, raw in enumerate(stream, 1):
        line = _decode(raw, line_no == 1).strip()
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
        line = _decode(raw, line_no == 1).rstrip("\r\n")
        if not line.strip():
            continue
        yield _record(line, None, name, line_no, record_no, fields)
        record_no += 1


def read_csv(stream: BinaryIO, name: str, fields: Fields = Fields()) -> Iterator[Item]:
    """CSV with a header row naming the columns; ``line_no`` is where a row starts."""
    lines = (_decode(raw, i == 0) for i, raw in enumerate(stream))
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
    values = dict(zip(header, row))
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
    text = _decode(data, True)
    if not text.strip():
        return Rejected(shown, 1, "empty file")
    return _record(text, relative, shown, 1, record_no, Fields())


READERS = {"jsonl": read_jsonl, "csv": read_csv, "txt": read_lines}
