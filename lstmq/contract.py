"""The task contract between producers and workers: names, queues, payload schema, limits.

Producers send tasks by *name* (``send_task``) and never import worker code, so this module is
the whole interface. Payloads are JSON; one message names a batch of documents.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

TASK_NAMES: dict[str, str] = {"classify": "lstmq.classify", "render": "lstmq.render"}
QUEUES: dict[str, str] = {"classify": "lstmq.classify", "render": "lstmq.render"}
ALL_QUEUES: tuple[str, ...] = tuple(QUEUES.values())

MAX_BATCH_DOCS = 2048  # documents in one message, upper bound for --batch-size
MAX_BATCH_BYTES = 8 * 1024 * 1024  # UTF-8 text bytes a worker reads for one batch
# A model is given this much of a document's text at most; models read at most a few hundred
# tokens, and the full text stays in the database. The worker still flags truncation by tokens.
MAX_TEXT_CHARS = 64 * 1024
MAX_TEXT_BYTES = 4 * MAX_TEXT_CHARS  # a character is at most 4 bytes of UTF-8
# A whole message as the broker holds it (JSON, base64 body). Messages name documents, not their
# texts; an older lstmq sent texts too (up to MAX_BATCH_BYTES, ~3x that escaped and encoded). A
# bigger one was not sent by lstmq and is refused unread.
MAX_MESSAGE_BYTES = 4 * MAX_BATCH_BYTES


class BatchPayload(BaseModel):
    """The single argument of every lstmq task: a batch of one job's documents, by id. The worker
    reads their recorded texts from the database, so a message never carries text (small in the
    broker, nothing to encode twice) and no text in a message is ever classified."""

    job_id: str
    model: str
    ids: list[int] = Field(min_length=1, max_length=MAX_BATCH_DOCS)
    # Its row in ``batches`` (lstmq.dispatch): marked running when a worker takes it, deleted
    # when its outcome is written. None in a batch sent by an older lstmq.
    batch_id: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_format(cls, data: object) -> object:
        """An older lstmq's message lists ``docs`` with their texts: their ids are taken, the
        texts ignored (the recorded ones are read), so batches queued across an upgrade run."""
        if isinstance(data, dict) and "ids" not in data and isinstance(docs := data.get("docs"), list):
            return {**data, "ids": [doc.get("id") if isinstance(doc, dict) else doc for doc in docs]}
        return data


def batch_message(job_id: str, model: str, batch_id: int, ids: list[int]) -> dict:
    """A ``BatchPayload`` as JSON, built without validating it: the dispatcher makes one per
    batch, in the worker's own process, and the worker validates it."""
    return {"job_id": job_id, "model": model, "batch_id": batch_id, "ids": ids}
