"""One classify batch: the documents left to do -> classifier -> result rows (see ``batches``).

Imported only by the task that runs it: the classifier brings torch into the process.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, Row

from lstmq.contract import BatchPayload
from lstmq.db.schema import Classification
from lstmq.errors import UserError
from lstmq.worker.batches import Outcome, Results, VersionInfo, fail_all, process_batch
from lstmq.worker.heal.oom import run_in_halves
from lstmq.worker.ml.classifier.inference import load_classifier

log = logging.getLogger("lstmq.worker")
CLASSIFICATIONS = Results(Classification, ("label", "score", "probs", "flags"))


def outcome_of(model_name: str, classifier, docs: list[Row], predictions) -> Outcome:
    """Pair predictions with documents; a prediction carrying an error fails its document only."""
    labels = list(classifier.labels)
    config = {"max_tokens": classifier.max_tokens}
    outcome = Outcome(version=VersionInfo(classifier.version, model_name, "classifier", labels, config))
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
                "score": pred.score,  # floats already: one tolist() per forward pass
                "probs": dict(zip(labels, pred.probs, strict=True)),
                "flags": list(pred.flags),
            }
        )
    return outcome


def predict(batch: BatchPayload, docs: list[Row], device: str) -> Outcome:
    """A model that cannot load fails the batch, no retry; one that runs out of GPU memory
    runs the batch in halves (``lstmq.worker.heal.oom``)."""
    try:
        classifier = load_classifier(batch.model, device=device)
    except UserError as exc:
        return fail_all(docs, str(exc))
    try:
        predictions = run_in_halves(lambda part: classifier.predict([doc.text for doc in part]), docs)
    except Exception as exc:  # noqa: BLE001 - record it on the documents rather than lose them
        log.exception("inference failed for a batch of job %s", batch.job_id)
        return fail_all(docs, f"inference failed: {type(exc).__name__}: {exc}")
    return outcome_of(batch.model, classifier, docs, predictions)


def classify_batch(batch: BatchPayload, engine: Engine, device: str = "auto", state: list[Row] | None = None) -> dict:
    """Classify what is left of ``batch`` and record it; returns counts for the task log."""
    return process_batch(engine, batch, CLASSIFICATIONS, lambda docs: predict(batch, docs, device), state)
