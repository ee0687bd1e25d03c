"""Worker heartbeats: the main process of each worker records itself in ``workers`` every few
seconds, with the batches it holds, and then runs the reconciler (``lstmq.worker.heal.reconcile``).
About once an hour it also offers to run the day's housekeeping (``lstmq.housekeeping``: retention,
dead worker rows, expired idempotency keys, stale spools), in a thread of its own so a long prune
never delays a beat; one worker a day takes it.

It runs in the process that receives messages (the prefork parent, or the only process), where
Celery keeps every request it has reserved, so a batch waiting for its retry counts as held.
Its engine keeps no connection between beats: a pool child forked later must not inherit one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from celery import Celery
from celery.worker import state
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from lstmq.db.dialects import upsert
from lstmq.db.engine import make_engine, session_scope
from lstmq.db.queries import live_workers
from lstmq.db.schema import WorkerBeat, utcnow
from lstmq.errors import TransientError
from lstmq.housekeeping import run_daily
from lstmq.settings import get_settings
from lstmq.worker.heal.outage import BrokerOutage
from lstmq.worker.heal.reconcile import reconcile

log = logging.getLogger("lstmq.worker")
HOUSEKEEPING_TRY_S = 3600  # how often a worker offers to run the day's housekeeping


@dataclass
class Identity:
    """What a worker says about itself; ``models`` grows as its batches name them."""

    name: str
    queues: list[str]
    device: str
    outage: BrokerOutage
    slots: int = 1  # batches it runs at once (--concurrency)
    started_at: datetime = field(default_factory=utcnow)
    models: set[str] = field(default_factory=set)

    @property
    def consuming(self) -> list[str]:
        """The queues it takes messages from now: none while its broker is unreachable."""
        return [] if self.outage.since is not None else self.queues

    def received(self, request) -> None:
        """Note the model a batch names (each process loads it on its first batch)."""
        model = payload_of(request).get("model")
        if isinstance(model, str):
            self.models.add(model)


def payload_of(request) -> dict:
    """The batch a request carries ({} for anything else: it is not ours to describe)."""
    args = request.args
    payload = args[0] if isinstance(args, list | tuple) and args else None
    return payload if isinstance(payload, dict) else {}


def held_batches(identity: Identity) -> list[dict]:
    """The batches this worker has taken and not finished (running, or waiting for a retry)."""
    held = []
    for request in list(state.reserved_requests):
        payload = payload_of(request)
        since = datetime.fromtimestamp(request.time_start, UTC) if request.time_start else None
        held.append(
            {
                "job_id": payload.get("job_id"),
                "batch_id": payload.get("batch_id"),
                "model": payload.get("model"),
                "docs": len(payload.get("docs") or []),
                "since": since.isoformat() if since else None,
            }
        )
    return held


def beat(engine: Engine, identity: Identity, held: list[dict]) -> None:
    row = {
        "name": identity.name,
        "pid": os.getpid(),
        "queues": identity.consuming,
        "models": sorted(identity.models),
        "device": identity.device,
        "slots": identity.slots,
        "current": held,
        "started_at": identity.started_at,
        "beat_at": utcnow(),
    }
    with session_scope(engine) as session:
        upsert(session, WorkerBeat, [row], ("name", "pid"))


class Heartbeat(threading.Thread):
    """Beat, then reconcile, every ``heartbeat_s``; a database outage is logged once, not fatal."""

    def __init__(self, app: Celery, identity: Identity) -> None:
        super().__init__(name="lstmq-heartbeat", daemon=True)
        self.app, self.identity = app, identity
        self.settings = get_settings()
        self.engine = make_engine(self.settings.database)
        self.stopped = threading.Event()
        self.failing = False
        self.housekeeping: threading.Thread | None = None
        self.next_housekeeping = 0.0  # time.monotonic() of the next offer

    def run(self) -> None:
        while True:
            self.tick()
            if self.stopped.wait(self.settings.heartbeat_s):
                return

    def tick(self) -> None:
        try:
            beat(self.engine, self.identity, held_batches(self.identity))
            if self.identity.consuming:  # a worker cut off from its broker could re-send nothing
                with session_scope(self.engine) as session:
                    workers = live_workers(session, self.settings.heartbeat_s)
                reconcile(self.engine, self.app, workers, self.settings)
            self._housekeep()
            self._failing(None)
        except (SQLAlchemyError, TransientError, OSError) as exc:
            self._failing(exc)
        finally:
            self.engine.dispose()  # no connection left open for a fork to inherit

    def _housekeep(self) -> None:
        if time.monotonic() < self.next_housekeeping or (self.housekeeping and self.housekeeping.is_alive()):
            return
        self.next_housekeeping = time.monotonic() + HOUSEKEEPING_TRY_S
        self.housekeeping = threading.Thread(
            target=run_daily, args=(self.settings,), name="lstmq-housekeeping", daemon=True
        )
        self.housekeeping.start()

    def _failing(self, exc: Exception | None) -> None:
        """One line when beats start failing and one when they work again."""
        if exc is not None and not self.failing:
            log.error("heartbeat failed (retrying every %d s): %s", self.settings.heartbeat_s, str(exc).splitlines()[0])
        elif exc is None and self.failing:
            log.warning("heartbeat recorded again")
        self.failing = exc is not None

    def stop(self) -> None:
        """Stop beating and remove this worker's row (a warm shutdown is not a death)."""
        self.stopped.set()
        self.join(timeout=self.settings.heartbeat_s + 5)
        try:
            with session_scope(self.engine) as session:
                session.execute(
                    delete(WorkerBeat).where(WorkerBeat.name == self.identity.name, WorkerBeat.pid == os.getpid())
                )
        except SQLAlchemyError:
            pass  # the row ages out by itself
        self.engine.dispose()
