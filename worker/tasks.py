"""Thin Celery tasks: validate the payload → the batch function → one database transaction.

Retry policy: a ``TransientError`` (database or broker outage, a full disk) retries with
exponential backoff, capped at ``RETRY_BACKOFF_MAX_S`` between attempts, for as long as the
outage lasts: a batch is never dropped because a service was down. The batch waits for its
retry in the task, on its worker, taken (``lstmq.worker.flight``): it stays in flight on a live
worker, so it is never sent again beside itself nor counted as lost. Anything a person must fix
(``UserError``, an invalid payload, an unknown model) is recorded and given up, never retried.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from pydantic import ValidationError
from sqlalchemy import Engine, Row
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from lstmq import stages
from lstmq.contract import TASK_NAMES, BatchPayload
from lstmq.db.engine import get_engine
from lstmq.errors import ServiceUnavailable, TransientError
from lstmq.worker import flight
from lstmq.worker.batches import batch_state, give_up, refusal
from lstmq.worker.celery_app import app
from lstmq.worker.dispatcher import wake
from lstmq.worker.heal.redeliveries import MAX_REDELIVERIES, poison_error, running
from lstmq.worker.shutdown import stopping

log = logging.getLogger("lstmq.worker")

RETRY_BACKOFF_MAX_S = 60  # the longest wait between two attempts of a batch
RETRY_LOG_EVERY = 10  # attempts between two log lines of one batch's outage


def backoff_s(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from 1 s, capped, with jitter (so the
    batches of one outage do not all come back at once)."""
    return min(RETRY_BACKOFF_MAX_S, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def pause(seconds: float) -> bool:
    """Wait before the next attempt; True when the worker is stopping meanwhile."""
    return stopping.wait(seconds)


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
    with stages.timed("read state", len(batch.ids)):
        rows = batch_state(get_engine(), batch)
        reason = refusal(batch, rows)
    if reason:
        log.error("job %s: batch refused, no result written: %s", batch.job_id, reason)
        return None
    return rows


def named_docs(payload: object) -> int:
    """How many documents a payload names, before it is validated (0 when it names none)."""
    named = payload.get("ids", payload.get("docs")) if isinstance(payload, dict) else None
    return len(named) if isinstance(named, list) else 0


def run_batch(task, payload: dict, kind: str) -> dict | None:
    """The body every lstmq task shares: validate, then attempts until one is not transient."""
    with stages.timed("receive", named_docs(payload)):
        batch = parse(payload)
    if batch is None:
        return None
    attempt, taken = 0, False
    while True:
        try:
            if not taken:  # once per delivery, however many attempts it takes
                with transient_db_errors():
                    flight.take(get_engine(), batch, task.request.hostname or "", beating_pid(task.app))
                taken = True
            outcome = attempt_batch(task, batch, kind)
        except TransientError as exc:
            attempt += 1
            if attempt == 1 or attempt % RETRY_LOG_EVERY == 0:
                log.warning("job %s: batch waits for its retry (attempt %d): %s", batch.job_id, attempt, exc)
            if pause(backoff_s(attempt)):
                with suppress(TransientError, SQLAlchemyError):
                    flight.hand_back(get_engine(), batch)
                raise
            continue
        wake()  # a slot is free: the dispatcher in this process sends the next batch at once
        return outcome


def beating_pid(app) -> int | None:
    """The process whose heartbeat says this worker is alive: a prefork child's parent."""
    return getattr(app.conf, "lstmq_beating_pid", None)


def attempt_batch(task, batch: BatchPayload, kind: str) -> dict | None:
    """One attempt: its turn, marked running in the broker → read its state, authentic? →
    poison check → the batch function → one transaction, which frees its slot too."""
    # Its turn in this process, marked running in the broker (lstmq.worker.heal.redeliveries). The
    # state is read once the turn has come (a redelivered batch waits for the batches beside it),
    # and the state read for the authenticity check is the batch function's too: read once.
    with transient_db_errors(), running(task.app.conf.broker_url, task.request) as count:
        rows = authentic_state(batch)
        if rows is None:
            return None  # refused: not what lstmq sent, so its batch id is not its to free
        return crashed_too_often(batch, count, rows) or batch_function(kind)(
            batch, get_engine(), task.app.conf.lstmq_device, rows
        )


@app.task(name=TASK_NAMES["classify"], bind=True)
def classify(self, payload: dict) -> dict | None:
    """Classify one batch of documents with the named model and record the results."""
    return run_batch(self, payload, "classify")


@app.task(name=TASK_NAMES["render"], bind=True)
def render(self, payload: dict) -> dict | None:
    """Render one batch of captions to images and record them."""
    return run_batch(self, payload, "render")
