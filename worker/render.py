"""One render batch: the documents left to do -> generator -> PNG files -> image rows (see ``batches``).

Files are written before the rows, under paths fixed by (model, version, document id), so a
redelivered batch rewrites the same files and upserts the same rows: never an extra file or row.
Each document's noise is seeded by its id, so redrawing it gives identical pixels. Imported only
by the task that runs it: the generator brings torch into the process.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, Row

from lstmq.contract import BatchPayload
from lstmq.db.schema import Image
from lstmq.errors import TransientError, UserError
from lstmq.settings import get_settings
from lstmq.worker.batches import Outcome, Results, VersionInfo, fail_all, process_batch
from lstmq.worker.heal.oom import run_in_halves
from lstmq.worker.images import StoredImage, store_image
from lstmq.worker.ml.generator.inference import load_image_generator

log = logging.getLogger("lstmq.worker")
IMAGES = Results(Image, ("path", "width", "height", "sha256", "flags"))


def store(root: Path, model: str, version: str, doc_id: int, image) -> StoredImage:
    """A full disk or an I/O error is the image folder's, not the document's: the batch is
    retried with backoff (like a database outage) until someone frees space or fixes it."""
    try:
        return store_image(root, model, version, doc_id, image)
    except OSError as exc:
        log.error("cannot write images under %s (%s): the batch is retried until it can", root, exc)
        raise TransientError(f"cannot write images under {root}: {exc}") from exc


def store_all(root: Path, model: str, generator, docs: list[Row], rendered) -> Outcome:
    """Write each rendered image; a caption without an image fails its document only."""
    version = generator.version
    config = {"max_tokens": generator.max_tokens}
    outcome = Outcome(version=VersionInfo(version, model, "generator", [], config))
    for doc, result in zip(docs, rendered, strict=True):
        if result.error:
            outcome.failed[doc.id] = result.error
            continue
        stored = store(root, model, version, doc.id, result.image)
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


def draw(batch: BatchPayload, docs: list[Row], device: str, root: Path) -> Outcome:
    """A model that cannot load fails the batch, no retry; one that runs out of GPU memory
    draws the batch in halves (``lstmq.worker.heal.oom``)."""
    try:
        generator = load_image_generator(batch.model, device=device)
    except UserError as exc:
        return fail_all(docs, str(exc))
    try:
        rendered = run_in_halves(lambda part: generator.render([d.text for d in part], [d.id for d in part]), docs)
    except Exception as exc:  # noqa: BLE001 - record it on the documents rather than lose them
        log.exception("generation failed for a batch of job %s", batch.job_id)
        return fail_all(docs, f"generation failed: {type(exc).__name__}: {exc}")
    return store_all(root, batch.model, generator, docs, rendered)


def render_batch(batch: BatchPayload, engine: Engine, device: str = "auto", state: list[Row] | None = None) -> dict:
    """Render what is left of ``batch`` and record it; returns counts for the task log."""
    root = get_settings().images
    return process_batch(engine, batch, IMAGES, lambda docs: draw(batch, docs, device, root), state)
