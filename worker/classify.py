"""One classify batch: which documents still need work → model → one database transaction.

Reading the batch's state and writing its outcome are two short transactions; inference runs
between them with no transaction open, so a slow batch never holds locks (SQLite included).
"""

from __future__ import annotations

import logging
import weakref

from sqlalchemy import Engine, select

from lstmq.contract import BatchPayload, DocIn
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, JOB_CANCELLED, Document, Job
from lstmq.errors import UserError
from worker.batches import Outcome, record_outcome, register_model_version

log = logging.getLogger("lstmq.worker")
# Model versions this process has recorded, per engine: one INSERT per version, not per batch.
_registered: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


def docs_to_process(engine: Engine, batch: BatchPayload) -> list[DocIn]:
    """The batch's documents that still need a result: none if the job is cancelled or gone;
    documents already done (a redelivered batch) and ids not in this job are skipped."""
    stmt = (
        select(Document.id, Document.status, Job.state)
        .join(Job, Job.id == Document.job_id)
        .where(Document.id.in_([doc.id for doc in batch.docs]), Document.job_id == batch.job_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if rows and rows[0].state == JOB_CANCELLED:
        log.info("job %s is cancelled: batch skipped", batch.job_id)
        return []
    open_ids = {row.id for row in rows if row.status != DOC_DONE}
    return [doc for doc in batch.docs if doc.id in open_ids]


def outcome_of(model_name: str, classifier, docs: list[DocIn], predictions) -> Outcome:
    """Pair predictions with documents; a prediction carrying an error fails its document only."""
    outcome = Outcome()
    for doc, pred in zip(docs, predictions, strict=True):
        if pred.error:
            outcome.failed[doc.id] = pred.error
            continue
        outcome.rows.append(
            {
                "document_id": doc.id,
                "model": model_name,
                "model_version": classifier.version,
                "label": pred.label,
                "score": float(pred.score),
                "probs": {label: float(p) for label, p in zip(classifier.labels, pred.probs, strict=True)},
                "flags": list(pred.flags),
            }
        )
    return outcome


def fail_all(docs: list[DocIn], error: str) -> Outcome:
    return Outcome(failed={doc.id: error for doc in docs})


def predict(batch: BatchPayload, docs: list[DocIn], device: str):
    """(classifier or None, outcome). A model that cannot load fails the batch, no retry."""
    from worker.ml.classifier.inference import load_classifier  # torch loads here, in the task's process

    try:
        classifier = load_classifier(batch.model, device=device)
    except UserError as exc:
        return None, fail_all(docs, str(exc))
    try:
        predictions = classifier.predict([doc.text for doc in docs])
    except Exception as exc:  # noqa: BLE001 - record it on the documents rather than lose them
        log.exception("inference failed for a batch of job %s", batch.job_id)
        return classifier, fail_all(docs, f"inference failed: {type(exc).__name__}: {exc}")
    return classifier, outcome_of(batch.model, classifier, docs, predictions)


def write_outcome(engine: Engine, batch: BatchPayload, classifier, outcome: Outcome) -> None:
    """Results, document statuses and the model version: one transaction."""
    known = _registered.setdefault(engine, set())
    register = classifier is not None and bool(outcome.rows) and classifier.version not in known
    with session_scope(engine) as session:
        if register:
            register_model_version(
                session,
                classifier.version,
                batch.model,
                "classifier",
                classifier.labels,
                {"max_tokens": classifier.max_tokens},
            )
        record_outcome(session, outcome)
    if register:
        known.add(classifier.version)


def classify_batch(batch: BatchPayload, engine: Engine, device: str = "auto") -> dict:
    """Classify what is left of ``batch`` and record it; returns counts for the task log."""
    docs = docs_to_process(engine, batch)
    if not docs:
        return {"done": 0, "failed": 0, "skipped": len(batch.docs)}
    classifier, outcome = predict(batch, docs, device)
    write_outcome(engine, batch, classifier, outcome)
    return {"done": len(outcome.rows), "failed": len(outcome.failed), "skipped": len(batch.docs) - len(docs)}


def give_up(engine: Engine, batch: BatchPayload, error: str) -> dict:
    """Record every unfinished document of the batch as failed with ``error`` (poison batch)."""
    docs = docs_to_process(engine, batch)
    with session_scope(engine) as session:
        record_outcome(session, fail_all(docs, error))
    return {"done": 0, "failed": len(docs), "skipped": len(batch.docs) - len(docs)}
