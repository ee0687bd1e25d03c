"""What request handlers get from the running app: the engine and the Celery app, both made
once at start-up (``lstmq.api.app``), and the caller's token (``lstmq.api.auth``)."""

from __future__ import annotations

from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy import Engine


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def celery_of(request: Request) -> Celery:
    return request.app.state.celery


EngineDep = Annotated[Engine, Depends(engine_of)]
CeleryDep = Annotated[Celery, Depends(celery_of)]
