"""One file of a scheduled corpus: plan from its cursor, read what is new, parse records.

Parsing reuses the ``lstmq submit`` readers, so a corrupt record is rejected with the same
``FILE:LINE: reason`` as there. A file that vanished or cannot be read is a *problem* of the
run (reported in its history), never an error that stops the other files.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lstmq.errors import InputError
from lstmq.producer.schedules.cursors import (
    UNCHANGED,
    Cursor,
    FileStat,
    LineReader,
    ReadPlan,
    head_hash,
    is_gzip,
    next_cursor,
    plan_read,
    unchanged,
)
from lstmq.readers.formats import read_records
from lstmq.readers.records import Fields, Record, Rejected
from lstmq.readers.sources import format_of
from lstmq.readers.streams import open_text_stream


@dataclass
class FileScan:
    path: str
    plan: ReadPlan
    lines_read: int = 0
    cursor: Cursor | None = None  # to store; None: keep the old one
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    problem: str | None = None  # the whole file could not be read


def match_files(pattern: str) -> list[str]:
    """Regular files matching the glob (``**`` recurses), sorted, as absolute paths."""
    found = (os.path.abspath(p) for p in glob.iglob(pattern, recursive=True))
    return sorted(p for p in found if os.path.isfile(p))


def file_format(path: str, fmt: str | None) -> str:
    return fmt or format_of(Path(path))


def scan_file(
    path: str, cursor: Cursor | None, fmt: str | None, fields: Fields, fresh: bool = False, max_lines: int | None = None
) -> FileScan:
    """Read what is new in ``path`` (at most ``max_lines``, the rest is left for the next
    run; gzip files are read whole); ``fresh`` ignores the cursor (reprocessing)."""
    try:
        if not fresh and unchanged(cursor, FileStat.of(os.stat(path))):
            return FileScan(path, UNCHANGED)  # the common case costs one stat
        with open(path, "rb") as fh:
            stat = FileStat.of(os.fstat(fh.fileno()))
            return _scan_open(fh, path, stat, None if fresh else cursor, file_format(path, fmt), fields, max_lines)
    except FileNotFoundError:
        return FileScan(path, ReadPlan("deleted"), problem=f"{path}: deleted")
    except InputError as exc:
        return FileScan(path, ReadPlan("unreadable"), problem=str(exc))
    except OSError as exc:
        return FileScan(path, ReadPlan("unreadable"), problem=f"{path}: cannot read ({exc.strerror or exc})")


def _scan_open(
    fh: BinaryIO, path: str, stat: FileStat, cursor: Cursor | None, fmt: str, fields: Fields, max_lines: int | None
) -> FileScan:
    whole = is_gzip(fh)
    plan = plan_read(cursor, stat, lambda n: head_hash(fh, n), whole_file=whole)
    scan = FileScan(path, plan)
    if not plan.read:
        return scan
    if whole:
        lines = _read_whole(fh, path, fmt, fields, scan)
        scan.cursor, scan.lines_read = next_cursor(fh, stat, stat.size, lines), lines
        return scan
    reader = LineReader(fh, plan, stat.size, max_lines)
    new_lines = list(reader)
    _parse(fh, path, fmt, fields, plan, new_lines, scan)
    scan.cursor = next_cursor(fh, stat, reader.offset, reader.lines)
    scan.lines_read = reader.lines - plan.start_line
    return scan


def _read_whole(fh: BinaryIO, path: str, fmt: str, fields: Fields, scan: FileScan) -> int:
    fh.seek(0)
    lines = list(open_text_stream(fh, path))
    _collect(read_records(iter(lines), path, fmt, fields), 0, scan)
    return len(lines)


def _parse(
    fh: BinaryIO, path: str, fmt: str, fields: Fields, plan: ReadPlan, lines: list[bytes], scan: FileScan
) -> None:
    if not lines:
        return
    shift = plan.start_line
    if fmt in ("csv", "tsv") and plan.start > 0:
        lines = [_first_line(fh)] + lines  # rows appended later still need the header
        shift -= 1
    _collect(read_records(iter(lines), path, fmt, fields), shift, scan)


def _first_line(fh: BinaryIO) -> bytes:
    fh.seek(0)
    return fh.readline()


def _collect(items, shift: int, scan: FileScan) -> None:
    for item in items:
        if isinstance(item, Rejected):
            scan.rejected.append(dataclasses.replace(item, line_no=item.line_no + shift))
        else:
            scan.records.append(dataclasses.replace(item, line_no=item.line_no + shift))
