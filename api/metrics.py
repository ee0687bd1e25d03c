"""``GET /metrics``: Prometheus text, read from the database and broker at each scrape.

Gauges, not counters: the database is the source of truth and any API process can answer.
Jobs by state (as `lstmq status` derives it), documents by model and status, messages waiting
per queue. Documents per model are what a dashboard turns into docs/s per model:
``sum by (model) (deriv(lstmq_documents{status=~"done|failed"}[5m]))``. Reused documents (a
copied result) are a gauge of their own, already counted in ``status="done"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from celery import Celery
from fastapi import APIRouter, Response
from kombu.exceptions import OperationalError as KombuOperationalError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from lstmq.api.auth import read_access
from lstmq.api.deps import CeleryDep, EngineDep
from lstmq.contract import ALL_QUEUES
from lstmq.db.engine import session_scope
from lstmq.db.queries import HAS_PENDING
from lstmq.db.schema import (
    BATCH_QUEUED,
    DOC_DONE,
    DOC_FAILED,
    DOC_PENDING,
    JOB_QUEUED,
    JOB_SUBMITTING,
    Batch,
    Job,
    as_utc,
    utcnow,
)
from lstmq.drift import latest_drift

BROKER_TIMEOUT_S = 2.0
router = APIRouter(tags=["service"])
log = logging.getLogger("lstmq.api")
DOC_STATUSES = (DOC_DONE, DOC_FAILED, DOC_PENDING)  # the order of _documents_by_model_and_status's counts


class StoreCollector:
    """The prometheus_client collector protocol: ``collect`` yields metric families."""

    def __init__(self, engine: Engine, app: Celery) -> None:
        self.engine, self.app = engine, app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("lstmq_jobs", "Jobs by state.", labels=["state"])
        documents = GaugeMetricFamily("lstmq_documents", "Documents by model and status.", labels=["model", "status"])
        reused = GaugeMetricFamily(
            "lstmq_documents_reused",
            "Done documents whose result was copied from another with the same text and model version.",
            labels=["model"],
        )
        with session_scope(self.engine) as session:
            for state, n in session.execute(_jobs_by_state()):
                jobs.add_metric([state], n)
            for model, *counts, copied in session.execute(_documents_by_model_and_status()):
                for status, n in zip(DOC_STATUSES, counts, strict=True):
                    if n:  # as a count of documents would: no series for a status nobody has
                        documents.add_metric([model, status], n)
                if copied:
                    reused.add_metric([model], copied)
        yield jobs
        yield documents
        yield reused
        yield from self._dispatch()
        yield from self._drift()
        yield from self._queue_depths()

    def _dispatch(self) -> Iterator[GaugeMetricFamily]:
        """Backlog by priority and owner, batches in flight by queue and state, and the dispatch
        lag: how long the oldest batch sent and not yet taken by a worker has waited."""
        backlog = GaugeMetricFamily(
            "lstmq_backlog_documents", "Pending documents of open jobs.", labels=["priority", "owner"]
        )
        flight = GaugeMetricFamily(
            "lstmq_batches_in_flight", "Batches sent and not finished.", labels=["queue", "state"]
        )
        lag = GaugeMetricFamily("lstmq_dispatch_lag_seconds", "Age of the oldest batch waiting for a worker.")
        with session_scope(self.engine) as session:
            for priority, owner, n in session.execute(_backlog()):
                backlog.add_metric([priority, owner], n or 0)
            for queue, state, n in session.execute(
                select(Batch.queue, Batch.state, func.count()).group_by(Batch.queue, Batch.state)
            ):
                flight.add_metric([queue, state], n)
            oldest = session.scalar(select(func.min(Batch.sent_at)).where(Batch.state == BATCH_QUEUED))
        lag.add_metric([], max(0.0, (utcnow() - as_utc(oldest)).total_seconds()) if oldest else 0.0)
        yield backlog
        yield flight
        yield lag

    def _drift(self) -> Iterator[GaugeMetricFamily]:
        """Per schedule, its latest run against its first (as `lstmq drift SCHEDULE`): PSI of the
        label mix and of the score histogram, and the expected accuracy."""
        names = {
            "label_psi": ("lstmq_schedule_label_psi", "PSI of the latest run's label mix against the first run's."),
            "score_psi": ("lstmq_schedule_score_psi", "PSI of the latest run's score histogram against the first's."),
            "expected_accuracy": ("lstmq_schedule_expected_accuracy", "Mean calibrated top score of the latest run."),
        }
        families = {key: GaugeMetricFamily(name, text, labels=["schedule"]) for key, (name, text) in names.items()}
        with session_scope(self.engine) as session:
            for schedule, run in latest_drift(session).items():
                for key, family in families.items():
                    if run[key] is not None:
                        family.add_metric([schedule], run[key])
        yield from families.values()

    def _queue_depths(self) -> Iterator[GaugeMetricFamily]:
        """Messages per queue; none when the broker is down (the database figures still count)."""
        depth = GaugeMetricFamily("lstmq_queue_messages", "Messages waiting in each queue.", labels=["queue"])
        try:
            with self.app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
                for queue in ALL_QUEUES:
                    # Not passive: an empty Redis queue has no key, and a passive declare calls it missing.
                    depth.add_metric([queue], conn.default_channel.queue_declare(queue=queue).message_count)
        except (KombuOperationalError, OSError) as exc:
            log.warning("metrics: broker unreachable: %s", exc)
            return
        yield depth


def _documents_by_model_and_status():
    """(model, done, failed, pending, reused), summed from the jobs' counters: a scrape reads the
    jobs, never every document."""
    done, failed, reused = func.sum(Job.done_count), func.sum(Job.failed_count), func.sum(Job.reused_count)
    return select(Job.model, done, failed, func.sum(Job.total) - done - failed, reused).group_by(Job.model)


def _backlog():
    pending = func.sum(Job.total - Job.done_count - Job.failed_count)
    open_jobs = Job.state.in_((JOB_QUEUED, JOB_SUBMITTING))
    return select(Job.priority, Job.owner, pending).where(open_jobs, HAS_PENDING).group_by(Job.priority, Job.owner)


def _jobs_by_state():
    return select(Job.state, func.count()).group_by(Job.state)


@router.get(
    "/metrics",
    dependencies=[read_access],
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
    summary="Prometheus metrics",
)
def metrics(engine: EngineDep, app: CeleryDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, app))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
