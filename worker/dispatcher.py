"""The dispatcher's loop, in the main process of every worker; one of them leads at a time.

The leader (``lstmq.dispatch.lease``) runs a dispatch round (``lstmq.dispatch.send``) whenever it
is woken: a batch of this process finished (``wake``), or, on PostgreSQL, a NOTIFY from any
process (a batch finished elsewhere, a job queued, requeued or reprioritised). It also looks
every ``IDLE_S`` in case a wake-up was missed (SQLite has no NOTIFY across processes). The
others only try to take the lease over, every heartbeat: a dead leader's lease runs out after
``LEASE_BEATS`` heartbeats, within the stall bound.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from lstmq import stages
from lstmq.db.engine import make_engine, session_scope
from lstmq.db.queries import live_workers
from lstmq.dispatch import lease
from lstmq.dispatch.order import FairShare
from lstmq.dispatch.send import dispatch_round, owner_weights
from lstmq.dispatch.wake import CHANNEL
from lstmq.errors import TransientError
from lstmq.settings import Settings, get_settings

log = logging.getLogger("lstmq.worker")

IDLE_S = 1.0  # the leader's look without a wake-up
LEASE_BEATS = 3  # heartbeats a lease lasts without renewal
# How long a round trusts the live workers and owners' weights it read: a round runs at every
# finished batch, and these change at heartbeat pace (a new weight applies within this).
KNOWN_S = 1.0
_wake = threading.Event()


def wake() -> None:
    """A slot of this process is free, or there is something to send: dispatch now."""
    _wake.set()


class Dispatcher(threading.Thread):
    def __init__(self, app: Celery, holder: str) -> None:
        super().__init__(name="lstmq-dispatcher", daemon=True)
        self.app, self.holder = app, f"{holder}:{os.getpid()}"
        self.settings: Settings = get_settings()
        self.engine: Engine = make_engine(self.settings.database)
        self.fair = FairShare()
        self.stopped = threading.Event()
        self.leading = False
        self._renew_at = 0.0
        self._failing = False
        self._listener: Listener | None = None
        self._workers: list = []  # live workers and owners' weights, read every KNOWN_S
        self._weights: dict[str, int] = {}
        self._known_until = 0.0

    @property
    def ttl_s(self) -> float:
        return self.settings.heartbeat_s * LEASE_BEATS

    def run(self) -> None:
        while not self.stopped.is_set():
            self.step()
            wait = IDLE_S if self.leading else self.settings.heartbeat_s
            _wake.wait(wait)
            _wake.clear()

    def step(self) -> None:
        """Renew or take the lease when due; lead a round when held. Failures are logged once."""
        try:
            if time.monotonic() >= self._renew_at:
                self._lead(lease.hold(self.engine, lease.DISPATCHER, self.holder, self.ttl_s))
            if self.leading:
                self.round()
            self._failed(None)
        except (SQLAlchemyError, TransientError, OSError) as exc:
            self._failed(exc)

    def round(self) -> int:
        start = time.perf_counter()
        if start >= self._known_until or not self._workers:
            with session_scope(self.engine) as session:
                self._workers = live_workers(session, self.settings.heartbeat_s)
                self._weights = owner_weights(session)
            self._known_until = start + KNOWN_S
        sent = dispatch_round(self.engine, self.app, self._workers, self.fair, self._weights)
        if sent.docs:
            stages.add("dispatch", sent.docs, time.perf_counter() - start)
        return sent.batches

    def _lead(self, held: bool) -> None:
        self._renew_at = time.monotonic() + (self.ttl_s / 3 if held else 0)
        if held != self.leading:
            log.info("dispatcher: %s", "leading" if held else "another worker leads")
            self.leading = held
            self._listen(held)

    def _listen(self, on: bool) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if on and self.engine.dialect.name == "postgresql":
            self._listener = Listener(self.engine)
            self._listener.start()

    def _failed(self, exc: Exception | None) -> None:
        if exc is not None and not self._failing:
            log.error("dispatcher: %s (retrying)", str(exc).splitlines()[0])
        elif exc is None and self._failing:
            log.warning("dispatcher: working again")
        self._failing = exc is not None

    def stop(self) -> None:
        """Stop, and give the lease up so another worker leads at once."""
        self.stopped.set()
        _wake.set()
        self.join(timeout=self.settings.heartbeat_s + 5)
        self._listen(False)
        if self.leading:
            try:
                lease.release(self.engine, lease.DISPATCHER, self.holder)
            except SQLAlchemyError:
                pass  # it runs out by itself
        self.engine.dispose()


class Listener(threading.Thread):
    """LISTEN on PostgreSQL: every NOTIFY on the dispatch channel wakes the dispatcher."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="lstmq-listen", daemon=True)
        self.engine = engine
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001 - any failure: the idle look still dispatches
                log.debug("dispatcher: LISTEN failed: %s", exc)
                self.stopped.wait(IDLE_S)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        raw.detach()  # a dedicated connection, never handed back to the pool
        conn = raw.driver_connection
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
            while not self.stopped.is_set():
                for _ in conn.notifies(timeout=IDLE_S, stop_after=1):
                    wake()
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
