"""The worker's Celery app: the shared configuration plus the task modules.

``celery -A lstmq.worker.celery_app worker`` and ``lstmq worker`` both load this module. Nothing here
imports torch or touches a model: models load lazily inside the process that runs tasks, so a
prefork parent never initialises CUDA (forked children could not use it).
"""

from __future__ import annotations

import logging
import sys

from celery import signals

from lstmq.db.engine import engine_for, make_engine, require_current_schema
from lstmq.errors import LstmqError
from lstmq.queue import make_celery, ping_broker
from lstmq.settings import get_settings
from lstmq.worker.heal.heartbeat import Heartbeat, Identity
from lstmq.worker.heal.outage import log_outages_once
from lstmq.worker.transport import GuardedTransport

log = logging.getLogger("lstmq.worker")

TASK_MODULES = ["lstmq.worker.tasks"]
_heartbeats: list[Heartbeat] = []  # this process's, between worker_ready and worker_shutdown
_outage = log_outages_once()  # also for bare `celery -A`: this module is what both load

app = make_celery(include=TASK_MODULES)
if app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport = GuardedTransport  # one poison message must not end the worker
app.conf.lstmq_device = "auto"  # `lstmq worker --device` overrides this before the pool starts
app.conf.lstmq_checked = False  # `lstmq worker` runs the start-up checks itself, before the banner


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
    """A forked child must open its own database connections, never reuse the parent's."""
    engine_for.cache_clear()


@signals.worker_ready.connect
def _start_heartbeat(sender, **_kwargs) -> None:
    """Record this worker every few seconds and reconcile stalled jobs (``lstmq.worker.heal.heartbeat``)."""
    queues = sorted(queue.name for queue in sender.task_consumer.queues)
    _heartbeats.append(Heartbeat(app, Identity(sender.hostname, queues, app.conf.lstmq_device, _outage)))
    _heartbeats[-1].start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_kwargs) -> None:
    while _heartbeats:
        _heartbeats.pop().stop()


@signals.task_received.connect
def _note_model(request, **_kwargs) -> None:
    for heartbeat in _heartbeats:
        heartbeat.identity.received(request)
