"""Opening inputs as binary line streams: gzip by magic bytes, binary files refused, lines
longer than ``MAX_LINE_BYTES`` skipped without being held (an ``OverlongLine`` in their place),
and mid-stream failures (a truncated gzip, an I/O error) turned into one ``InputError`` line."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from lstmq.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192  # a NUL in the first 8 KiB (after gunzip) means a binary file
READ_BUFFER_BYTES = 1 << 16
# A line holds one document: its text is capped at MAX_TEXT_BYTES (records.py); JSON escapes can
# make the line several times longer. A longer line (a file with no newlines, a runaway field)
# is skipped in small chunks once this much of it is read: it costs about twice this in memory.
MAX_LINE_BYTES = 8 << 20


class OverlongLine:
    """Stands for a line longer than ``MAX_LINE_BYTES``, not kept: parsers reject it."""

    __slots__ = ("size",)

    def __init__(self, size: int):
        self.size = size

    @property
    def reason(self) -> str:
        return f"line of {self.size:,} bytes, longer than the {MAX_LINE_BYTES:,} a document's line may have"


def overlong(line: bytes) -> bool:
    """Whether ``line``, read with ``readline(MAX_LINE_BYTES + 1)``, is the start of a longer line."""
    return len(line) > MAX_LINE_BYTES and not line.endswith(b"\n")


def skip_line(readline: Callable[[int], bytes], first: bytes, budget: int | None = None) -> tuple[bytes, int]:
    """Read the rest of the overlong line that starts with ``first`` in small chunks, holding
    none, up to its newline or ``budget`` bytes in all; returns its last chunk (does it end the
    line?) and the line's size."""
    last, size = first, len(first)
    while not last.endswith(b"\n") and (budget is None or size < budget):
        chunk = readline(READ_BUFFER_BYTES if budget is None else min(READ_BUFFER_BYTES, budget - size))
        if not chunk:
            break
        last, size = chunk, size + len(chunk)
    return last, size


def open_text_stream(raw: BinaryIO, name: str) -> _GuardedStream:
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
    return _GuardedStream(buffered, name, head)


class _GuardedStream:
    """Line iteration whose mid-stream failures (corrupt gzip, I/O) become one InputError.
    ``head`` is the first bytes (gunzipped), for checks that must not consume the stream."""

    def __init__(self, stream: BinaryIO, name: str, head: bytes):
        self._stream, self._name, self.head = stream, name, head

    def __iter__(self) -> Iterator[bytes | OverlongLine]:
        readline = self._stream.readline
        try:
            while line := readline(MAX_LINE_BYTES + 1):
                yield OverlongLine(skip_line(readline, line)[1]) if overlong(line) else line
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self._name}: unreadable ({exc})") from None

    def read_at_most(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self._name}: unreadable ({exc})") from None


def decode(raw: bytes, first: bool) -> str:
    # surrogateescape keeps bad bytes visible to the field checks instead of failing the file.
    line = raw.decode("utf-8", "surrogateescape")
    return line.removeprefix("\ufeff") if first else line
