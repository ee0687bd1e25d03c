"""``GET /metrics``: Prometheus text, read from the database and broker at each scrape.

Gauges, not counters: the database is the source of truth and any API process can answer.
Jobs by state (as `lstmq status` derives it), documents by status, messages waiting per queue.
"""

from __future__ import annotations

from collections.abc import Iterator

from celery import Celery
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, and_, case, exists, func, select

from api.auth import read_access
from api.deps import CeleryDep, EngineDep
from lstmq.contract import ALL_QUEUES
from lstmq.db.engine import session_scope
from lstmq.db.queries import JOB_FINISHED
from lstmq.db.schema import DOC_PENDING, JOB_QUEUED, Document, Job

router = APIRouter(tags=["service"])


class StoreCollector:
    """The prometheus_client collector protocol: ``collect`` yields metric families."""

    def __init__(self, engine: Engine, app: Celery) -> None:
        self.engine, self.app = engine, app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("lstmq_jobs", "Jobs by state.", labels=["state"])
        documents = GaugeMetricFamily("lstmq_documents", "Documents by status.", labels=["status"])
        with session_scope(self.engine) as session:
            for state, n in session.execute(_jobs_by_state()):
                jobs.add_metric([state], n)
            for status, n in session.execute(select(Document.status, func.count()).group_by(Document.status)):
                documents.add_metric([status], n)
        yield jobs
        yield documents
        yield self._queue_depths()

    def _queue_depths(self) -> GaugeMetricFamily:
        depth = GaugeMetricFamily("lstmq_queue_messages", "Messages waiting in each queue.", labels=["queue"])
        with self.app.connection_for_read() as conn:
            channel = conn.default_channel
            for queue in ALL_QUEUES:
                depth.add_metric([queue], channel.queue_declare(queue=queue, passive=False).message_count)
        return depth


def _jobs_by_state():
    pending = exists().where(Document.job_id == Job.id, Document.status == DOC_PENDING)
    state = case((and_(Job.state == JOB_QUEUED, ~pending), JOB_FINISHED), else_=Job.state).label("state")
    derived = select(state).subquery()
    return select(derived.c.state, func.count()).group_by(derived.c.state)


@router.get("/metrics", dependencies=[read_access], summary="Prometheus metrics")
def metrics(engine: EngineDep, app: CeleryDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, app))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
