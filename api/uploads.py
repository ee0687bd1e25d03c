"""A request body spooled to a temporary file in bounded memory, so the readers of
``lstmq submit`` can read it like any input file (gzip is recognised by its magic bytes, so a
body sent with ``Content-Encoding: gzip`` is read as it came)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lstmq.housekeeping import SPOOL_PREFIX  # swept when a server was killed mid-request

WRITE_BYTES = 1 << 20  # body bytes gathered before one write (in a thread)
MAX_UPLOAD_BYTES = 64 << 30  # bytes on disk; a larger body gets 413
ENCODINGS = ("", "identity", "gzip", "x-gzip")
FORMAT_OF_TYPE = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
    "text/plain": "txt",
}
DEFAULT_FORMAT = "jsonl"  # as for stdin


@dataclass(frozen=True)
class Upload:
    path: Path
    size: int  # bytes as sent (compressed if it was)
    sha256: str


def format_of(request: Request, explicit: str | None) -> str:
    """The ``format`` parameter, else the Content-Type's, else JSON Lines."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return explicit or FORMAT_OF_TYPE.get(media_type, DEFAULT_FORMAT)


@asynccontextmanager
async def spooled(request: Request) -> AsyncIterator[Upload]:
    """The body in a temporary file (removed afterwards), with its size and SHA-256."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise HTTPException(415, f"Content-Encoding {encoding!r} not accepted (send gzip or none)")
    with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX + "upload-") as folder:
        path = Path(folder) / "body"
        with path.open("wb") as out:
            size, digest = await _copy_body(request, out)
        if size == 0:
            raise HTTPException(422, "empty body: send the input file itself as the request body")
        yield Upload(path, size, digest)


async def _copy_body(request: Request, out: BinaryIO) -> tuple[int, str]:
    digest, pending, size = hashlib.sha256(), bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"body larger than {MAX_UPLOAD_BYTES} bytes")
        pending += chunk
        if len(pending) >= WRITE_BYTES:
            await run_in_threadpool(_write, out, digest, bytes(pending))
            pending.clear()
    await run_in_threadpool(_write, out, digest, bytes(pending))
    return size, digest.hexdigest()


def _write(out: BinaryIO, digest, data: bytes) -> None:
    digest.update(data)
    out.write(data)
