"""Records of every format: JSON Lines, CSV, TSV and text lines (parsed as rows, see
``lstmq.readers.rows``), and folders of text files.

Each reader is a generator over a binary line stream (see ``lstmq.readers.streams``), so memory
stays bounded by one record whatever the input size. Bad records are yielded as
``Rejected`` with their line; only a problem with a whole input raises ``InputError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from lstmq.errors import InputError
from lstmq.readers.records import MAX_TEXT_BYTES, Fields, Record, Rejected, external_id_of, text_problem
from lstmq.readers.rows import Row, read_rows
from lstmq.readers.streams import decode, open_text_stream

Item = Record | Rejected


def read_records(lines: Iterable[bytes], name: str, fmt: str, fields: Fields = Fields()) -> Iterator[Item]:
    """Each row of one input as a record; ``record_no`` counts rejected rows too."""
    rows = read_rows(lines, name, fmt, (fields.text,))
    for record_no, row in enumerate(rows):
        yield row if isinstance(row, Rejected) else record_of(row, record_no, fields)


def record_of(row: Row, record_no: int, fields: Fields) -> Item:
    """The row's text and id, checked: a ``Record``, or a ``Rejected`` that keeps a usable id."""
    problem = text_problem(row.values.get(fields.text), fields.text)
    external_id, id_problem = external_id_of(row.values.get(fields.id), fields.id)
    if problem or id_problem:
        return Rejected(row.source, row.line_no, problem or id_problem, None if id_problem else external_id)
    return Record(row.values[fields.text], external_id, row.source, row.line_no, record_no)


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
            data = open_text_stream(raw, shown).read_at_most(MAX_TEXT_BYTES + 1)
    except InputError as exc:
        return Rejected(shown, 1, str(exc).removeprefix(f"{shown}: "))
    except OSError as exc:
        return Rejected(shown, 1, f"cannot read ({exc.strerror})")
    if len(data) > MAX_TEXT_BYTES:  # read no further than the cap
        return Rejected(shown, 1, f"file longer than the {MAX_TEXT_BYTES:,} bytes a document may have")
    text = decode(data, True)
    if not text.strip():
        return Rejected(shown, 1, "empty file")
    return record_of(Row(shown, 1, {"text": text, "id": relative}), record_no, Fields())
