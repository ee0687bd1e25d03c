"""The Celery application as both sides configure it, and sending batches by task name.

Producers import this (never worker code); ``lstmq.worker.celery_app`` adds the task modules.
Delivery is at-least-once: acks late, requeue on worker loss, every write idempotent.
"""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from lstmq import filebroker
from lstmq.contract import ALL_QUEUES, QUEUES, TASK_NAMES, BatchPayload
from lstmq.errors import ServiceUnavailable
from lstmq.settings import Settings, get_settings, mask_url

EMBEDDED_POLL_S = 0.01
PUBLISH_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3}


def transport_options(settings: Settings) -> dict:
    if settings.embedded_broker:
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # exchange bindings; kombu's default is ./control in the working directory
            "control_folder": str(folder / "control"),
            # How long the consumer sleeps when it cannot take a message: none is queued, or every
            # slot of a threads pool is busy (an ack does not wake it). kombu's 1 s held a
            # --concurrency 2 worker to about 500 docs/s; each poll is one directory listing.
            "polling_interval": EMBEDDED_POLL_S,
        }
    return redis_transport_options(settings.visibility_timeout_s)


def redis_transport_options(visibility_timeout_s: int) -> dict:
    """Redis redelivers an unacked message ``visibility_timeout`` seconds after its worker took
    it (it must exceed the longest batch). Workers look for such messages in a sweep: kombu's
    default sweep runs every 10 s x 10 calls, so a dead worker's batch could wait ~100 s past
    its timeout; here the sweep runs every quarter of the timeout, between 1 s and 10 s. The
    sweep's Redis lock outlives a worker killed while holding it for ``unacked_mutex_expire``
    (kombu: 300 s, during which nobody restores anything), so that is cut to 60 s."""
    return {
        "visibility_timeout": visibility_timeout_s,
        "unacked_restore_interval": max(1, min(10, visibility_timeout_s // 4)),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 60,
    }


def make_celery(settings: Settings | None = None, include: list[str] | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("lstmq", broker=settings.broker, include=include or [])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # results live in our database
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(settings),
        # A worker reconnects for as long as the broker is away (kombu waits 2, 4, ... up to 30 s
        # between attempts): a broker outage of any length must not end it.
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_queues=None,
        task_default_queue=QUEUES["classify"],
        task_routes={name: {"queue": QUEUES[kind]} for kind, name in TASK_NAMES.items()},
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # flower
        task_send_sent_event=False,
        enable_utc=True,
    )
    if settings.embedded_broker:  # whole message files only (lstmq.filebroker)
        app.conf.broker_transport = filebroker.Transport
    app.conf.lstmq_queues = ALL_QUEUES
    return app


def send_batch(app: Celery, task: str, payload: BatchPayload | dict) -> None:
    """Publish one batch by task name (a payload, or its JSON from ``batch_message``); broker
    trouble becomes one ServiceUnavailable line."""
    body = payload.model_dump(mode="json") if isinstance(payload, BatchPayload) else payload
    try:
        app.send_task(
            TASK_NAMES[task],
            args=[body],
            # A short repr: Celery otherwise saferepr()s the whole payload for its logs.
            argsrepr=f"<{len(body.get('ids', ()))} documents of job {body['job_id']}>",
            queue=QUEUES[task],
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except (KombuOperationalError, OSError) as exc:
        raise ServiceUnavailable(f"broker {mask_url(app.conf.broker_url)} unreachable: {exc}") from None


def ping_broker(app: Celery, timeout_s: float = 5.0) -> None:
    """Fail at start-up with one line when the broker cannot be reached."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - kombu raises many types for "unreachable"
        raise ServiceUnavailable(f"broker {mask_url(app.conf.broker_url)} unreachable: {exc}") from None


def queue_length(app: Celery, queue: str) -> int:
    """Messages waiting in ``queue`` (not those a worker has taken); ServiceUnavailable when the
    broker cannot be asked."""
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)  # a broker outage must not hang the caller
            return conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False).message_count
    except (KombuOperationalError, OSError) as exc:
        raise ServiceUnavailable(f"broker {mask_url(app.conf.broker_url)} unreachable: {exc}") from None
