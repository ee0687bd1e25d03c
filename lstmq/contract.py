"""The task contract between producers and workers: names, queues, payload schema, limits.

Producers send tasks by *name* (``send_task``) and never import worker code, so this module is
the whole interface. Payloads are JSON; one message carries a batch of documents.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

TASK_NAMES: dict[str, str] = {"classify": "lstmq.classify", "render": "lstmq.render"}
QUEUES: dict[str, str] = {"classify": "lstmq.classify", "render": "lstmq.render"}
ALL_QUEUES: tuple[str, ...] = tuple(QUEUES.values())

MAX_BATCH_DOCS = 2048  # documents in one message, upper bound for --batch-size
MAX_BATCH_BYTES = 8 * 1024 * 1024  # UTF-8 text bytes in one message
# Text sent in a message is cut here; models read at most a few hundred tokens, and the
# full text stays in the database. The worker still flags truncation by tokens.
MAX_MESSAGE_TEXT_CHARS = 64 * 1024
# A whole message as the broker holds it (JSON, base64 body): MAX_BATCH_BYTES of text can grow
# ~3x when escaped and encoded; a bigger one was not sent by lstmq and is refused unread.
MAX_MESSAGE_BYTES = 4 * MAX_BATCH_BYTES


class DocIn(BaseModel):
    """One document in a batch: its database id and its text."""

    id: int
    text: str


class BatchPayload(BaseModel):
    """The single argument of every lstmq task."""

    job_id: str
    model: str
    docs: list[DocIn] = Field(min_length=1, max_length=MAX_BATCH_DOCS)
    # Its row in ``batches`` (lstmq.dispatch): marked running when a worker takes it, deleted
    # when its outcome is written. None in a batch sent by an older lstmq.
    batch_id: int | None = None


def message_text(text: str) -> str:
    """The part of a document's text that travels in a message."""
    return text[:MAX_MESSAGE_TEXT_CHARS]


def batch_message(job_id: str, model: str, batch_id: int, docs) -> dict:
    """A ``BatchPayload`` as JSON, from rows with ``id`` and ``text`` (texts cut by
    ``message_text``, or by SQL to the same length). Built without a model per document: the
    dispatcher makes one per batch, in the worker's own process, and the worker validates it."""
    return {
        "job_id": job_id,
        "model": model,
        "batch_id": batch_id,
        "docs": [{"id": doc.id, "text": message_text(doc.text)} for doc in docs],
    }
