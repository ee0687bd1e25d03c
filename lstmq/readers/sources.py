"""Input readers: which inputs the user named, in which format, read as one record stream.

Files (JSON Lines, CSV, TSV, text; gzip detected by magic bytes, not by name), folders of
``.txt`` files, and ``-`` for stdin. ``read_sources`` yields ``Record`` or ``Rejected`` (see
``lstmq.readers.records``) lazily; only problems with a whole input (missing, binary, unknown
format, a JSON array, no text column) raise ``InputError``. The formats live in
``lstmq.readers.formats`` and ``lstmq.readers.rows``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lstmq.errors import InputError
from lstmq.readers.formats import Item, read_folder, read_records
from lstmq.readers.records import STDIN_NAME, Fields, Rejected
from lstmq.readers.rows import Row, read_rows, refuse_json_array
from lstmq.readers.streams import open_text_stream

FORMATS = ("jsonl", "csv", "tsv", "txt")
# ".json" is read as JSON Lines; a JSON array is refused with how to convert it.
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".txt": "txt"}


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
    source = Source(name, path, fmt or format_of(path))
    with _open_source(source, None):
        pass  # unreadable, binary or a JSON array: refused now, not after reading the inputs before it
    return source


def format_of(path: Path) -> str:
    """The format a file's name says (``.gz`` aside: gzip is told by content), or InputError."""
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
            yield from read_records(stream, source.name, source.format, fields)


def read_input_rows(name: str, fields: Sequence[str], fmt: str | None = None) -> Iterator[Row | Rejected]:
    """The rows of one file (or ``-``), for readers that need more fields than a record's
    (training data's label). ``fields`` must all be there, the text first."""
    (source,) = resolve_sources([name], fmt)
    if source.format == "folder":
        raise InputError(f"{name}: a folder holds one document per file, not rows with fields")
    with _open_source(source, None) as stream:
        yield from read_rows(stream, source.name, source.format, fields)


@contextmanager
def _open_source(source: Source, stdin: BinaryIO | None) -> Iterator[BinaryIO]:
    if source.path is None:
        yield _checked(open_text_stream(stdin or sys.stdin.buffer, source.name), source)
        return
    try:
        raw = source.path.open("rb")
    except OSError as exc:
        raise InputError(f"{source.name}: cannot open ({exc.strerror})") from None
    with raw:
        yield _checked(open_text_stream(raw, source.name), source)


def _checked(stream: BinaryIO, source: Source) -> BinaryIO:
    if source.format == "jsonl":
        refuse_json_array(stream.head, source.name)
    return stream
