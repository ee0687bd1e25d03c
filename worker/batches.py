"""Idempotent writes of a batch's outcome, all inside the caller's transaction.

Results are keyed by (document, model, model version) and written with the dialect's
``INSERT ... ON CONFLICT DO UPDATE``: a redelivered or retried batch rewrites the same rows and
never adds a second one. Works on PostgreSQL and SQLite (both support ON CONFLICT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session

from lstmq.db.dialects import dialect_insert, upsert
from lstmq.db.schema import (
    DOC_DONE,
    DOC_FAILED,
    Classification,
    Document,
    ModelVersion,
    utcnow,
)

RESULT_KEY = ("document_id", "model", "model_version")  # one result per document and model version
MAX_ERROR_CHARS = 2000  # an error message is for people; a traceback does not belong in a row


@dataclass
class Outcome:
    """What a batch produced: result rows for the done documents, an error for each failed one."""

    rows: list[dict] = field(default_factory=list)  # Classification columns
    failed: dict[int, str] = field(default_factory=dict)  # document id -> error


def upsert_classifications(session: Session, rows: list[dict]) -> None:
    upsert(session, Classification, rows, RESULT_KEY, ("label", "score", "probs", "flags"))


def register_model_version(session: Session, version: str, name: str, kind: str, labels, config) -> None:
    """Record what a version id means, once (the first writer wins; versions are content hashes)."""
    stmt = dialect_insert(session, ModelVersion).values(
        version=version, name=name, kind=kind, labels=list(labels), config=dict(config), first_seen=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))


def set_document_status(session: Session, done: list[int], failed: dict[int, str]) -> None:
    """Mark documents done (clearing any earlier error) in one statement, and each failed one
    with its own error (rare, so one parameter set per document)."""
    now = utcnow()
    if done:
        session.execute(
            update(Document).where(Document.id.in_(done)).values(status=DOC_DONE, error=None, updated_at=now),
            execution_options={"synchronize_session": False},
        )
    if failed:
        params = [
            {"id": doc_id, "status": DOC_FAILED, "error": error[:MAX_ERROR_CHARS], "updated_at": now}
            for doc_id, error in failed.items()
        ]
        session.execute(update(Document), params)  # ORM bulk UPDATE by primary key


def record_outcome(session: Session, outcome: Outcome) -> None:
    """Write one batch's outcome; the caller's transaction makes it all-or-nothing.

    No job row is touched: batches of one job never wait for each other, and a job's
    ``finished_at`` is derived by the status queries from its documents' ``updated_at``."""
    upsert_classifications(session, outcome.rows)
    set_document_status(session, [row["document_id"] for row in outcome.rows], outcome.failed)
