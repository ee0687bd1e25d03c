"""Dispatching in a test without a worker: send every job's backlog now."""

from __future__ import annotations

from types import SimpleNamespace

from celery import Celery
from sqlalchemy import Engine

from lstmq.contract import ALL_QUEUES
from lstmq.dispatch.order import FairShare
from lstmq.dispatch.send import dispatch_round
from lstmq.queue import make_celery

UNLIMITED = 10**9


def send_all(engine: Engine, app: Celery | None = None) -> int:
    """One round of a dispatcher whose workers have unlimited room: every pending document not
    yet sent goes to the broker (a job still recording: its full batches). Returns batches sent."""
    everyone = [SimpleNamespace(queues=list(ALL_QUEUES), slots=UNLIMITED)]
    return dispatch_round(engine, app or make_celery(), everyone, FairShare()).batches
