"""File cursors: how far each corpus file was read, and whether it changed since.

A cursor remembers a file's size, mtime, inode, the byte offset read so far (always just past
a newline) and a hash of its first bytes. Comparing it with a fresh ``stat`` decides, without
opening the file in the common case, what a run must read (``plan_read``, pure)::

    no cursor                          -> new: read from 0
    other inode, size < offset,
    or first bytes differ              -> replaced / truncated: read from 0
    same size+mtime, offset == size    -> unchanged: not opened at all
    same size+mtime, offset < size     -> settled: the unterminated last line stopped growing
    bigger, first bytes the same       -> appended: read from offset
    same size, newer mtime             -> rewritten: read from 0

Reading from 0 is cheap in documents: the ledger skips every text already processed.
Gzip files cannot be appended to line by line, so any change re-reads them whole.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lstmq.readers.streams import GZIP_MAGIC, MAX_LINE_BYTES, OverlongLine, overlong, skip_line

HEAD_BYTES = 4096  # enough to tell one file from its replacement


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Cursor:
    size: int
    mtime_ns: int
    inode: int
    offset: int
    lines: int
    head_hash: str
    head_len: int


@dataclass(frozen=True)
class ReadPlan:
    reason: str  # new | appended | settled | truncated | replaced | rewritten | unchanged
    start: int = 0  # byte offset to read from
    start_line: int = 0  # lines before ``start``
    include_tail: bool = False  # also take an unterminated last line

    @property
    def read(self) -> bool:
        return self.reason != "unchanged"


UNCHANGED = ReadPlan("unchanged")


def unchanged(cursor: Cursor | None, stat: FileStat) -> bool:
    """Fully read and not touched since: decided from ``stat`` alone, the file stays closed."""
    return (
        cursor is not None
        and stat.inode == cursor.inode
        and stat.size == cursor.size
        and stat.mtime_ns == cursor.mtime_ns
        and cursor.offset == stat.size
    )


def plan_read(
    cursor: Cursor | None, stat: FileStat, head_hash_of: Callable[[int], str], whole_file: bool = False
) -> ReadPlan:
    """What to read of a file now, given its cursor (``head_hash_of(n)`` hashes its first n bytes)."""
    if cursor is None:
        return ReadPlan("new", include_tail=whole_file)
    if stat.inode != cursor.inode:
        return ReadPlan("replaced", include_tail=whole_file)
    if stat.size < cursor.offset:
        return ReadPlan("truncated", include_tail=whole_file)
    if unchanged(cursor, stat):
        return UNCHANGED
    if stat.size == cursor.size and stat.mtime_ns == cursor.mtime_ns:
        return ReadPlan("settled", cursor.offset, cursor.lines, include_tail=True)
    if whole_file or head_hash_of(cursor.head_len) != cursor.head_hash:
        return ReadPlan("replaced", include_tail=whole_file)
    if stat.size == cursor.size:
        return ReadPlan("rewritten")
    return ReadPlan("appended", cursor.offset, cursor.lines)


def head_hash(fh: BinaryIO, length: int) -> str:
    fh.seek(0)
    return hashlib.sha256(fh.read(length)).hexdigest()


def is_gzip(fh: BinaryIO) -> bool:
    fh.seek(0)
    return fh.read(2) == GZIP_MAGIC


class LineReader:
    """Lines of a file between ``plan.start`` and ``stop`` (the size seen by ``stat``).

    Iterating yields raw lines, at most ``max_lines``; afterwards ``offset`` and ``lines`` say
    how far it got. A last line without a newline is left for a later run (a writer may be
    mid-line) unless ``plan.include_tail``.
    """

    def __init__(self, fh: BinaryIO, plan: ReadPlan, stop: int, max_lines: int | None = None):
        self._fh, self._stop, self._tail = fh, stop, plan.include_tail
        self.offset, self.lines = plan.start, plan.start_line
        self._last = None if max_lines is None else plan.start_line + max_lines

    def __iter__(self) -> Iterator[bytes | OverlongLine]:
        self._fh.seek(self.offset)
        while self.offset < self._stop and self.lines != self._last:
            line = self._fh.readline(min(self._stop - self.offset, MAX_LINE_BYTES + 1))
            size, skipped = len(line), overlong(line)
            if skipped:  # as lstmq.readers.streams skips it, within what stat saw
                line, size = skip_line(self._fh.readline, line, self._stop - self.offset)
            if not size or (not line.endswith(b"\n") and not self._tail):
                return
            self.offset += size
            self.lines += 1
            yield OverlongLine(size) if skipped else line


def next_cursor(fh: BinaryIO, stat: FileStat, offset: int, lines: int) -> Cursor:
    """The cursor to store after reading up to ``offset``."""
    head_len = min(offset, HEAD_BYTES)
    return Cursor(stat.size, stat.mtime_ns, stat.inode, offset, lines, head_hash(fh, head_len), head_len)
