"""Opening inputs as binary line streams: gzip by magic bytes, binary files refused, lines
longer than ``MAX_LINE_BYTES`` skipped without being held (an ``OverlongLine`` in their place),
and mid-stream failures (a truncated gzip, an I/O error) turned into one ``InputError`` line."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
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
                if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
                    yield line
                    continue
                size = len(line)
                while not line.endswith(b"\n") and (line := readline(READ_BUFFER_BYTES)):
                    size += len(line)
                yield OverlongLine(size)
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
