"""URL-encoded form bodies (login, cancel, requeue), read without python-multipart: the
console's forms are small and never upload files (uploads go to ``POST /api/v1/jobs``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.exceptions import HTTPException

from lstmq.api.sessions import CSRF_FIELD, ConsoleSession, csrf_ok

MAX_FORM_BYTES = 16 << 10


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a form posted from this server's own pages."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "a form from another site")  # login CSRF: SameSite cannot stop it
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"form larger than {MAX_FORM_BYTES} bytes")
    return {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}


async def checked_form(request: Request, console: ConsoleSession) -> dict[str, str]:
    """The form's fields, once its CSRF field matches the session's."""
    fields = await form_fields(request)
    if not csrf_ok(console, fields.get(CSRF_FIELD)):
        raise HTTPException(403, "the form's CSRF token does not match this session; reload the page")
    return fields
