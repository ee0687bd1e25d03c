"""The ASGI application: routes under ``/api/v1``, docs at ``/api/docs``, problems for errors,
and the web console (``lstmq.api.console``) at ``/``.

``create_app`` is the factory ``lstmq serve`` hands to uvicorn; the engine (schema checked) and
the Celery app are made once per process in the lifespan.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

import lstmq
from lstmq.api import images, jobs, metrics, problems, results, reviews, schedules, service, submissions
from lstmq.api.console import apidocs, pages
from lstmq.api.tokens import any_active
from lstmq.db.engine import ready_engine, session_scope
from lstmq.housekeeping import sweep_spools
from lstmq.queue import make_celery

API_PREFIX = "/api/v1"
log = logging.getLogger("lstmq.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.engine = ready_engine()
    app.state.celery = make_celery()
    if swept := sweep_spools(Path(tempfile.gettempdir())):  # left by a server killed mid-upload
        log.warning("removed %d stale upload spools", swept)
    with session_scope(app.state.engine) as session:
        if not any_active(session):
            log.warning("no API token exists: every request gets 401; run `lstmq token create NAME --scope admin`")
    yield
    app.state.celery.close()
    app.state.engine.dispose()


def create_app() -> FastAPI:
    app = FastAPI(
        title="lstmq",
        version=lstmq.__version__,
        summary="Submit text collections, follow jobs, fetch labels and images.",
        docs_url=None,  # lstmq.api.console.apidocs serves /api/docs without a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        # Named, not left to FastAPI's default: JSON is then written by json.dumps as before the
        # routes had response models (pydantic's fast path writes 1e-05 as 0.00001).
        default_response_class=JSONResponse,
    )
    problems.install(app)
    app.include_router(service.router)
    app.include_router(metrics.router)
    for module in (submissions, jobs, reviews, results, images, schedules, service):
        app.include_router(module.api, prefix=API_PREFIX)
    app.include_router(apidocs.router)
    pages.install(app)
    return app
