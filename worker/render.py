"""One render batch: which documents still need an image -> generator -> PNG files -> one transaction.

Files are written before the rows, under paths fixed by (model, version, document id), so a
redelivered batch rewrites the same files and upserts the same rows: never an extra file or row.
Each document's noise is seeded by its id, so redrawing it gives identical pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from lstmq.contract import BatchPayload, DocIn
from lstmq.db.dialects import upsert
from lstmq.db.engine import session_scope
from lstmq.db.schema import Image
from lstmq.errors import UserError
from lstmq.settings import get_settings
from worker.batches import RESULT_KEY, Outcome, register_model_version, set_document_status
from worker.classify import docs_to_process, fail_all
from worker.images import store_image

log = logging.getLogger("lstmq.worker")


def upsert_images(session: Session, rows: list[dict]) -> None:
    upsert(session, Image, rows, RESULT_KEY, ("path", "width", "height", "sha256", "flags"))


def store_all(root: Path, model: str, version: str, docs: list[DocIn], rendered) -> Outcome:
    """Write each rendered image; a caption without an image, or a failed write, fails its document only."""
    outcome = Outcome()
    for doc, result in zip(docs, rendered, strict=True):
        if result.error:
            outcome.failed[doc.id] = result.error
            continue
        try:
            stored = store_image(root, model, version, doc.id, result.image)
        except OSError as exc:
            outcome.failed[doc.id] = f"image write failed: {exc}"
            continue
        outcome.rows.append(
            {
                "document_id": doc.id,
                "model": model,
                "model_version": version,
                "path": stored.path,
                "width": stored.width,
                "height": stored.height,
                "sha256": stored.sha256,
                "flags": list(result.flags),
            }
        )
    return outcome


def draw(batch: BatchPayload, docs: list[DocIn], device: str, root: Path):
    """(generator or None, outcome). A model that cannot load fails the batch, no retry."""
    from worker.ml.generator.inference import load_image_generator  # torch loads here

    try:
        generator = load_image_generator(batch.model, device=device)
    except UserError as exc:
        return None, fail_all(docs, str(exc))
    try:
        rendered = generator.render([d.text for d in docs], [d.id for d in docs])
    except Exception as exc:  # noqa: BLE001 - record it on the documents rather than lose them
        log.exception("generation failed for a batch of job %s", batch.job_id)
        return generator, fail_all(docs, f"generation failed: {type(exc).__name__}: {exc}")
    return generator, store_all(root, batch.model, generator.version, docs, rendered)


def write_outcome(engine: Engine, batch: BatchPayload, generator, outcome: Outcome) -> None:
    """Image rows, document statuses and the model version: one transaction (as for
    classifications, no job row is touched; a job's end is derived from its documents)."""
    with session_scope(engine) as session:
        if generator is not None and outcome.rows:
            register_model_version(
                session, generator.version, batch.model, "generator", [], {"max_tokens": generator.max_tokens}
            )
        upsert_images(session, outcome.rows)
        set_document_status(session, [row["document_id"] for row in outcome.rows], outcome.failed)


def render_batch(batch: BatchPayload | dict, engine: Engine, device: str = "auto") -> dict:
    """Render what is left of ``batch`` and record it; returns counts for the task log."""
    batch = batch if isinstance(batch, BatchPayload) else BatchPayload.model_validate(batch)
    docs = docs_to_process(engine, batch)
    if not docs:
        return {"done": 0, "failed": 0, "skipped": len(batch.docs)}
    generator, outcome = draw(batch, docs, device, get_settings().images)
    write_outcome(engine, batch, generator, outcome)
    return {"done": len(outcome.rows), "failed": len(outcome.failed), "skipped": len(batch.docs) - len(docs)}
