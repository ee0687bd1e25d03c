"""Thin Celery tasks: validate the payload → the batch function → one database transaction.

Retry policy: a ``TransientError`` (database or broker outage) retries with exponential backoff,
capped at ``RETRY_BACKOFF_MAX_S`` between attempts, for as long as the outage lasts: a batch is
never dropped because a service was down. Anything a person must fix (``UserError``, an
invalid payload, an unknown model) is recorded and given up, never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from sqlalchemy import Engine, Row
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from lstmq import stages
from lstmq.contract import TASK_NAMES, BatchPayload
from lstmq.db.engine import get_engine
from lstmq.errors import ServiceUnavailable, TransientError
from lstmq.worker.batches import batch_state, give_up, refusal
from lstmq.worker.celery_app import app
from lstmq.worker.heal.redeliveries import MAX_REDELIVERIES, poison_error, running

log = logging.getLogger("lstmq.worker")

RETRY_BACKOFF_MAX_S = 60  # well below the visibility timeout: a countdown must never exceed it
RETRY_POLICY = {
    "bind": True,
    "autoretry_for": (TransientError,),
    "retry_backoff": True,
    "retry_backoff_max": RETRY_BACKOFF_MAX_S,
    "retry_jitter": True,
    "max_retries": None,  # an outage ends; a batch that can never succeed is not transient
}


@contextmanager
def transient_db_errors() -> Iterator[None]:
    """Lost connections, locked SQLite files, serialization failures: retry, don't give up."""
    try:
        yield
    except (OperationalError, InterfaceError, DisconnectionError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ServiceUnavailable(f"database error: {reason}") from exc


def parse(payload: object) -> BatchPayload | None:
    try:
        return BatchPayload.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        log.error("invalid batch payload dropped: %s at %s", first["msg"], first.get("loc"))
        return None


def crashed_too_often(batch: BatchPayload, count: int, state: list[Row]) -> dict | None:
    """Give up a batch whose worker died ``count`` times while running it; None when it may run."""
    if count < MAX_REDELIVERIES:
        return None
    log.error("job %s: %s", batch.job_id, poison_error(count))
    return give_up(get_engine(), batch, poison_error(count), state)


def batch_function(kind: str) -> Callable[[BatchPayload, Engine, str, list[Row]], dict]:
    """The function that runs a batch of ``kind``, imported only when a batch runs: it loads torch
    (seconds), which belongs in the process running tasks (never a prefork parent) and must come
    after the poison check, or a worker killed while loading it would never be counted."""
    if kind == "render":
        from lstmq.worker.render import render_batch  # loads torch: see the docstring

        return render_batch
    from lstmq.worker.classify import classify_batch  # loads torch: see the docstring

    return classify_batch


def authentic_state(batch: BatchPayload) -> list[Row] | None:
    """The batch's state, read once (``batches.batch_state``) for the authenticity check and the
    batch function; None for a batch lstmq did not send as it is (``batches.refusal``): refused,
    logged."""
    with stages.timed("read state", len(batch.docs)):
        rows = batch_state(get_engine(), batch)
        reason = refusal(get_engine(), batch, rows)
    if reason:
        log.error("job %s: batch refused, no result written: %s", batch.job_id, reason)
        return None
    return rows


def run_batch(task, payload: dict, kind: str) -> dict | None:
    """The body every lstmq task shares: validate → its turn, marked running → read its state,
    authentic? → poison check → the batch function → one transaction."""
    with stages.timed("receive", len(payload.get("docs", ())) if isinstance(payload, dict) else 0):
        batch = parse(payload)
    if batch is None:
        return None
    # Its turn in this process, marked running in the broker (lstmq.worker.heal.redeliveries). The state is
    # read once the turn has come (a redelivered batch waits for the batches beside it), and the
    # state read for the authenticity check is the batch function's too: read once.
    with transient_db_errors(), running(task.app.conf.broker_url, task.request) as count:
        rows = authentic_state(batch)
        if rows is None:
            return None
        return crashed_too_often(batch, count, rows) or batch_function(kind)(
            batch, get_engine(), task.app.conf.lstmq_device, rows
        )


@app.task(name=TASK_NAMES["classify"], **RETRY_POLICY)
def classify(self, payload: dict) -> dict | None:
    """Classify one batch of documents with the named model and record the results."""
    return run_batch(self, payload, "classify")


@app.task(name=TASK_NAMES["render"], **RETRY_POLICY)
def render(self, payload: dict) -> dict | None:
    """Render one batch of captions to images and record them."""
    return run_batch(self, payload, "render")
