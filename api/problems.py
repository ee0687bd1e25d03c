"""Errors as RFC 9457 problem objects (``type``, ``title``, ``detail``, ``status``), never a
stack trace. ``LstmqError`` classes already say what went wrong; here they get a status code.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from lstmq.errors import (
    InputError,
    JobNotFound,
    LstmqError,
    ModelNotFound,
    NotInstalled,
    PermissionDenied,
    ScheduleError,
    ScheduleNotFound,
    SchemaOutdated,
    SubmitCancelled,
    TransientError,
    UserError,
    kind_of,
)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 5  # what a 503 asks a client to wait before trying again
# First match wins: subclasses before their bases.
STATUS_OF_ERROR: tuple[tuple[type[LstmqError], int], ...] = (
    (JobNotFound, 404),
    (PermissionDenied, 403),
    (ScheduleNotFound, 404),
    (InputError, 422),
    (ModelNotFound, 422),
    (ScheduleError, 422),
    (SchemaOutdated, 503),
    (NotInstalled, 501),  # this server lacks an optional extra
    (SubmitCancelled, 409),  # cancelled while this request recorded it
    (UserError, 400),
    (TransientError, 503),
)
log = logging.getLogger("lstmq.api")


def problem(status: int, detail: str, kind: str | None = None, headers: dict | None = None, **extra) -> JSONResponse:
    """A problem response; ``kind`` names the error (``urn:lstmq:<kind>``), else ``about:blank``."""
    body = {
        "type": f"urn:lstmq:{kind}" if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def status_of(exc: LstmqError) -> int:
    return next((status for cls, status in STATUS_OF_ERROR if isinstance(exc, cls)), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LstmqError, _lstmq_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_parameters)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected)


async def _lstmq_error(request: Request, exc: LstmqError) -> JSONResponse:
    return problem(status_of(exc), str(exc), kind_of(exc))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


async def _bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_field_error(error) for error in exc.errors()]
    detail = "; ".join(f"{e['in']} parameter {e['field']!r}: {e['message']}" for e in errors)
    return problem(422, detail, "bad-parameters", errors=errors)


def _field_error(error: dict) -> dict:
    where, *path = error.get("loc") or ("request",)
    return {"in": where, "field": ".".join(str(part) for part in path), "message": error.get("msg", "invalid")}


async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
    log.warning("database error on %s: %s", request.url.path, str(exc.orig or exc).splitlines()[0])
    return problem(503, "the database is unreachable; try again shortly", "service-unavailable")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this response is sent, so the server log gets the traceback.
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(500, "internal error; the server log has the details")
