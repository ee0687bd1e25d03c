"""Webhook events, written to the outbox (``webhook_deliveries``) by the transaction of what
they tell: the one that finishes a job (``lstmq.db.transitions``), cancels it, or begins a
recovery of its batches (the reconciler). A rolled-back transaction leaves no event; a
committed one leaves a delivery per receiver that the workers send at least once.

Body: ``{"id", "type", "created_at", "job"}``, ``job`` as GET /api/v1/jobs/{id} answers it at
that moment. One id per event, the same for each receiver and each attempt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from lstmq import apischema
from lstmq.db.queries import job_object
from lstmq.db.schema import Job, WebhookDelivery
from lstmq.settings import get_settings

JOB_FINISHED = "job.finished"
JOB_FAILED_DOCUMENTS = "job.failed_documents"  # finished, with failed documents
JOB_CANCELLED = "job.cancelled"
JOB_STALLED = "job.stalled"  # the first recovery of its batches since it last progressed
EVENTS = (JOB_FINISHED, JOB_FAILED_DOCUMENTS, JOB_CANCELLED, JOB_STALLED)
NOTIFY = "notify"  # jobs.options key: the job's receivers (URLs)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def emit(session: Session, job_id: str, events: Sequence[str], now: datetime) -> int:
    """Write ``events`` of the job to the outbox, one delivery per receiver; returns how many
    (none, and no job read, for a job without receivers)."""
    options = session.scalar(select(Job.options).where(Job.id == job_id)) or {}
    urls = options.get(NOTIFY) or []
    if not urls or not events:
        return 0
    session.flush()  # the job read next must see this transaction's changes, Core or ORM
    session.get(Job, job_id, populate_existing=True)
    settings = get_settings()
    # Through the API's own response model: the object GET /api/v1/jobs/{id} answers, byte for byte.
    job = apischema.Job.model_validate(job_object(session, job_id, settings.heartbeat_s, settings.stall_after_s))
    job = job.model_dump(mode="json")
    rows = []
    for event in events:
        event_id = uuid.uuid4().hex
        body = json.dumps({"id": event_id, "type": event, "created_at": now.isoformat(), "job": job})
        rows += [_delivery(event_id, event, job_id, url, body, now) for url in urls]
    session.execute(insert(WebhookDelivery), rows)
    return len(rows)


def finished(session: Session, job_id: str, now: datetime) -> int:
    """``job.finished``, and ``job.failed_documents`` too when some of its documents failed."""
    failed = session.scalar(select(Job.failed_count).where(Job.id == job_id))
    return emit(session, job_id, [JOB_FINISHED] + ([JOB_FAILED_DOCUMENTS] if failed else []), now)


def _delivery(event_id: str, event: str, job_id: str, url: str, body: str, now: datetime) -> dict:
    return {
        "event_id": event_id,
        "event": event,
        "job_id": job_id,
        "url": url,
        "body": body,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
