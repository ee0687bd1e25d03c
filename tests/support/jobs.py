"""Jobs in the database, written the way a producer writes them and read the way a test checks them."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter

from sqlalchemy import Engine, func, select

from lstmq.contract import BatchPayload
from lstmq.db import queries
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, JOB_QUEUED, Batch, Classification, Document, Job, ModelVersion


def add_job(
    engine: Engine,
    texts: list[str],
    model: str = "news",
    task: str = "classify",
    state: str = JOB_QUEUED,
    dispatched: bool = False,
) -> tuple[str, list[int]]:
    """Record a job and its documents the way a producer would; returns (job id, doc ids).
    ``dispatched``: as if all were sent already (the test sends its own batches to a worker,
    whose dispatcher must not send them too)."""
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
                content_hash=sha256_hex(text),  # as recorded: result reuse finds texts by it
                text=text,
            )
            for i, text in enumerate(texts)
        ]
        session.add_all(docs)
        session.flush()
        if dispatched:
            session.get(Job, job_id).dispatched_id = max(doc.id for doc in docs)
        return job_id, [doc.id for doc in docs]


def add_batch(engine: Engine, job_id: str, ids: list[int], queue: str = "lstmq.classify", **fields) -> int:
    """A batch in flight over ``ids``, as the dispatcher records one (``fields`` override, e.g.
    state, worker, worker_pid, kills, sent_at); returns its id."""
    with session_scope(engine) as session:
        batch = Batch(job_id=job_id, queue=queue, first_id=min(ids), last_id=max(ids), docs=len(ids), **fields)
        session.add(batch)
        session.flush()
        if "sent_at" in fields:  # a column default fills in None at insert: set it as given
            batch.sent_at = fields["sent_at"]
            session.flush()
        return batch.id


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def batches_of(engine: Engine, job_id: str) -> list[Batch]:
    """The job's batches in flight, oldest first."""
    with session_scope(engine) as session:
        rows = list(session.scalars(select(Batch).where(Batch.job_id == job_id).order_by(Batch.id)))
        session.expunge_all()
        return rows


def batch_of(job_id: str, model: str, ids: list[int], texts: list[str] | None = None) -> BatchPayload:
    """A batch naming ``ids``; with ``texts``, in an older lstmq's format (its documents listed
    with texts, which a worker never uses)."""
    if texts is None:
        return BatchPayload.model_validate({"job_id": job_id, "model": model, "ids": ids})
    docs = [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
    return BatchPayload.model_validate({"job_id": job_id, "model": model, "docs": docs})


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


def add_results(
    engine: Engine,
    job_id: str,
    ids: list[int],
    results: list[tuple[str, float]],
    labels: tuple[str, ...] = ("World", "Sports", "Business", "Sci/Tech"),
    model: str = "news",
    version: str = "v1",
) -> None:
    """Classification rows ``(label, score)`` for the job's documents, as a worker writes them
    (each document done), and the model version (with ``labels``) they came from."""
    with session_scope(engine) as session:
        if session.get(ModelVersion, version) is None:
            session.add(ModelVersion(version=version, name=model, kind="classifier", labels=list(labels)))
        for document_id, (label, score) in zip(ids, results, strict=True):
            session.get(Document, document_id).status = DOC_DONE
            probs = {label: score}
            session.add(
                Classification(
                    document_id=document_id, model=model, model_version=version, label=label, score=score, probs=probs
                )
            )
