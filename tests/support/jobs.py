"""Jobs in the database, written the way a producer writes them and read the way a test checks them."""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import Engine, func, select

from lstmq.contract import BatchPayload
from lstmq.db import queries
from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_QUEUED, Classification, Document, Job


def add_job(
    engine: Engine, texts: list[str], model: str = "news", task: str = "classify", state: str = JOB_QUEUED
) -> tuple[str, list[int]]:
    """Record a job and its documents the way a producer would; returns (job id, doc ids)."""
    job_id = uuid.uuid4().hex
    with session_scope(engine) as session:
        session.add(Job(id=job_id, task=task, model=model, state=state, total=len(texts)))
        session.flush()  # no ORM relationship: the job row must exist before its documents
        docs = [
            Document(
                job_id=job_id,
                external_id=str(i),
                source="test",
                record_no=i,
                line_no=i + 1,
                content_hash=f"{i:064d}",
                text=text,
            )
            for i, text in enumerate(texts)
        ]
        session.add_all(docs)
        session.flush()
        return job_id, [doc.id for doc in docs]


def batch_of(job_id: str, model: str, ids: list[int], texts: list[str]) -> BatchPayload:
    return BatchPayload.model_validate(
        {"job_id": job_id, "model": model, "docs": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]}
    )


def status_counts(engine: Engine, job_id: str) -> Counter:
    with session_scope(engine) as session:
        return Counter(queries.status_counts(session, [job_id])[job_id])


def results_per_document(engine: Engine, job_id: str) -> Counter:
    """document id -> number of classification rows (every value must be 1)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Classification.document_id, func.count())
            .join(Document, Document.id == Classification.document_id)
            .where(Document.job_id == job_id)
            .group_by(Classification.document_id)
        ).all()
    return Counter(dict(rows))


def job_finished(engine: Engine, job_id: str) -> bool:
    return status_counts(engine, job_id).get("pending", 0) == 0
