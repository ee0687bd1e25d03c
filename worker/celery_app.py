"""The worker's Celery app: the shared configuration plus the task modules.

``celery -A lstmq.worker.celery_app worker`` and ``lstmq worker`` both load this module. Nothing here
imports torch or touches a model: models load lazily inside the process that runs tasks, so a
prefork parent never initialises CUDA (forked children could not use it).
"""

from __future__ import annotations

import logging
import os
import sys

from celery import signals

from lstmq.db.engine import engine_for, make_engine, require_current_schema
from lstmq.errors import LstmqError
from lstmq.queue import make_celery, ping_broker
from lstmq.settings import get_settings
from lstmq.worker.dispatcher import Dispatcher
from lstmq.worker.heal.heartbeat import Heartbeat, Identity
from lstmq.worker.heal.outage import log_outages_once
from lstmq.worker.shutdown import stopping
from lstmq.worker.transport import GuardedTransport
from lstmq.worker.webhooks import WebhookSender

log = logging.getLogger("lstmq.worker")

TASK_MODULES = ["lstmq.worker.tasks"]
_heartbeats: list[Heartbeat] = []  # this process's, between worker_ready and worker_shutdown
_dispatchers: list[Dispatcher] = []  # likewise
_senders: list[WebhookSender] = []  # likewise
_outage = log_outages_once()  # also for bare `celery -A`: this module is what both load

app = make_celery(include=TASK_MODULES)
if app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport = GuardedTransport  # one poison message must not end the worker
app.conf.lstmq_device = "auto"  # `lstmq worker --device` overrides this before the pool starts
app.conf.lstmq_checked = False  # `lstmq worker` runs the start-up checks itself, before the banner
app.conf.lstmq_beating_pid = None  # a prefork child's: its parent's pid (the process that beats)


def startup_checks() -> None:
    """Schema current and broker reachable, or one clear line (raises LstmqError)."""
    # A throwaway engine: pooled connections must not be inherited by forked children.
    engine = make_engine(get_settings().database)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
    ping_broker(app)


@signals.worker_init.connect
def _check_before_consuming(**_kwargs) -> None:
    """Refuse to start on an outdated schema or unreachable broker (also for bare `celery -A`)."""
    if app.conf.lstmq_checked:
        return
    try:
        startup_checks()
    except LstmqError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None


@signals.worker_process_init.connect
def _fresh_engines_in_child(**_kwargs) -> None:
    """A forked child must open its own database connections, never reuse the parent's, and
    must not close them either (SQLAlchemy's rule for forks: dispose without closing)."""
    engine_for.cache_clear()
    for dispatcher in _dispatchers:
        dispatcher.engine.dispose(close=False)
    app.conf.lstmq_beating_pid = os.getppid()


@signals.worker_ready.connect
def _start_heartbeat(sender, **_kwargs) -> None:
    """Record this worker every few seconds and reconcile stalled jobs (``lstmq.worker.heal.heartbeat``)."""
    queues = sorted(queue.name for queue in sender.task_consumer.queues)
    identity = Identity(sender.hostname, queues, app.conf.lstmq_device, _outage, slots=_slots(sender))
    _heartbeats.append(Heartbeat(app, identity))
    _heartbeats[-1].start()
    _dispatchers.append(Dispatcher(app, sender.hostname))
    _dispatchers[-1].start()
    _senders.append(WebhookSender())
    _senders[-1].start()


def _slots(consumer) -> int:
    """Batches the worker runs at once (--concurrency)."""
    return max(1, getattr(getattr(consumer, "controller", None), "concurrency", None) or 1)


@signals.worker_shutting_down.connect
def _stop_waiting_for_retries(**_kwargs) -> None:
    """A batch waiting for its retry gives way at once (lstmq.worker.tasks), not after the outage."""
    stopping.set()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_kwargs) -> None:
    while _senders:
        _senders.pop().stop()
    while _dispatchers:
        _dispatchers.pop().stop()
    while _heartbeats:
        _heartbeats.pop().stop()


@signals.task_received.connect
def _note_model(request, **_kwargs) -> None:
    for heartbeat in _heartbeats:
        heartbeat.identity.received(request)
