"""The batch's database code, shared by both tasks: what is left to do, and one write of the outcome.

Reading the batch's state and writing its outcome are two short transactions; the model runs
between them with no transaction open, so a slow batch never holds locks (SQLite included).
Results are keyed by (document, model, model version) and upserted: a redelivered or retried
batch rewrites the same rows and never adds a second one.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Row, func, select
from sqlalchemy.orm import Session

from lstmq import stages
from lstmq.contract import MAX_MESSAGE_TEXT_CHARS, BatchPayload, DocIn
from lstmq.db.dialects import among, dialect_insert, upsert_rows
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, JOB_CANCELLED, Document, Job, ModelVersion, utcnow
from lstmq.db.transitions import mark_done, mark_failed
from lstmq.worker import flight

log = logging.getLogger("lstmq.worker")

RESULT_KEY = ("document_id", "model", "model_version")  # one result per document and model version
MAX_ERROR_CHARS = 2000  # an error message is for people; a traceback does not belong in a row
# Model versions this process has recorded, per engine: one INSERT per version, not per batch.
_registered: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Results:
    """Where a task's result rows go: its table and the columns a rewrite replaces."""

    table: type
    columns: tuple[str, ...]


@dataclass(frozen=True)
class VersionInfo:
    """What a model version id means, recorded in ``model_versions`` with its first results."""

    version: str
    name: str
    kind: str
    labels: list[str]
    config: dict


@dataclass
class Outcome:
    """What a batch produced: result rows for the done documents, an error for each failed one."""

    rows: list[dict] = field(default_factory=list)  # columns of the task's results table
    failed: dict[int, str] = field(default_factory=dict)  # document id -> error
    version: VersionInfo | None = None  # the model that made the rows


def docs_to_process(engine: Engine, batch: BatchPayload, state: list[Row] | None = None) -> list[DocIn]:
    """The batch's documents that still need a result, from its ``state`` (read here unless the
    task already read it for its authenticity check): none if the job is cancelled or gone;
    documents already done (a redelivered batch) and ids not in this job are skipped."""
    rows = batch_state(engine, batch) if state is None else state
    if rows and rows[0].state == JOB_CANCELLED:
        log.info("job %s is cancelled: batch skipped", batch.job_id)
        return []
    open_ids = {row.id for row in rows if row.status != DOC_DONE}
    return [doc for doc in batch.docs if doc.id in open_ids]


def batch_state(engine: Engine, batch: BatchPayload) -> list[Row]:
    """Each of the batch's documents in its job: status and content hash, with the job's state and
    model. One statement outside a transaction: no BEGIN and ROLLBACK round trips. Primary-key
    lookups only (a document's job is compared here, not in SQL: given ``documents.job_id = ?``
    a planner with stale statistics may scan the whole job by ``ix_documents_job_status``)."""
    stmt = (
        select(Document.id, Document.status, Document.content_hash, Document.job_id, Job.state, Job.model)
        .join(Job, Job.id == batch.job_id)
        .where(among(engine, Document.id, [doc.id for doc in batch.docs]))
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return [row for row in conn.execute(stmt) if row.job_id == batch.job_id]


def refusal(engine: Engine, batch: BatchPayload, rows: list[Row]) -> str | None:
    """Why ``batch`` cannot be what lstmq sent for its job (None when it can): a producer sends
    the job's model and each document's recorded text, cut to ``MAX_MESSAGE_TEXT_CHARS``. So a
    forged batch (another model, or other text, for real document ids) writes no result.

    A text whose sha256 is its document's ``content_hash`` is the recorded one; only the others
    (texts cut for the message, or rows whose hash is not of their text) are compared with the
    recorded text, read for them alone."""
    if rows and rows[0].model != batch.model:
        return f"model {batch.model!r} is not the job's model {rows[0].model!r}"
    hashes = {row.id: row.content_hash for row in rows}
    unproven = [doc for doc in batch.docs if doc.id in hashes and sha256_hex(doc.text) != hashes[doc.id]]
    recorded = recorded_texts(engine, [doc.id for doc in unproven]) if unproven else {}
    forged = [doc.id for doc in unproven if recorded.get(doc.id, doc.text) != doc.text]
    return f"the text of document {forged[0]} is not the recorded one" if forged else None


def sha256_hex(text: str) -> str:
    """What the producer records as ``content_hash``; a lone surrogate (never in a recorded text,
    but JSON can carry one) gets a hash that matches nothing instead of an exception."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def recorded_texts(engine: Engine, ids: list[int]) -> dict[int, str]:
    """The recorded texts of ``ids`` as a message carries them (cut to ``MAX_MESSAGE_TEXT_CHARS``)."""
    stmt = select(Document.id, func.substr(Document.text, 1, MAX_MESSAGE_TEXT_CHARS)).where(Document.id.in_(ids))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return dict(conn.execute(stmt).all())


def fail_all(docs: list[DocIn], error: str) -> Outcome:
    return Outcome(failed={doc.id: error for doc in docs})


def report(batch: BatchPayload, docs: list[DocIn], outcome: Outcome) -> dict:
    """Counts for the task log; documents not processed were skipped."""
    return {"done": len(outcome.rows), "failed": len(outcome.failed), "skipped": len(batch.docs) - len(docs)}


def process_batch(
    engine: Engine,
    batch: BatchPayload,
    results: Results,
    work: Callable[[list[DocIn]], Outcome],
    state: list[Row] | None = None,
) -> dict:
    """Run ``work`` on what is left of ``batch`` and record its outcome, the batch's row leaving
    ``batches`` in the same transaction; returns counts. Each step is counted (``lstmq.stages``;
    reading the state by the task) and flushed for ``lstmq bench pipeline``. ``state``: the
    batch's state when the task already read it."""
    docs = docs_to_process(engine, batch, state)
    outcome = Outcome()
    if docs:
        with stages.timed("model", len(docs)):
            outcome = work(docs)
    with stages.timed("write results", len(docs)):
        write_outcome(engine, outcome, results, batch.job_id, batch.batch_id)
    stages.flush()
    return report(batch, docs, outcome)


def give_up(engine: Engine, batch: BatchPayload, error: str, state: list[Row] | None = None) -> dict:
    """Record every unfinished document of the batch as failed with ``error`` (poison batch)."""
    docs = docs_to_process(engine, batch, state)
    outcome = fail_all(docs, error)
    with session_scope(engine) as session:
        set_document_status(session, [], outcome.failed, batch.job_id)
        flight.finish(session, batch.batch_id, batch.job_id)
    return report(batch, docs, outcome)


def write_outcome(
    engine: Engine, outcome: Outcome, results: Results, job_id: str | None = None, batch_id: int | None = None
) -> None:
    """Result rows, document statuses, the model version and the batch's slot (``batch_id``, freed
    by ``flight.finish``): one transaction, all-or-nothing, so a batch leaves ``batches`` exactly
    when its outcome is written.

    The job's counters move last, just before the commit: batches of one job wait for each
    other only for that commit, never while writing their rows (``lstmq.db.transitions``)."""
    known = _registered.setdefault(engine, set())
    version = outcome.version if outcome.rows and outcome.version else None
    with session_scope(engine) as session:
        if version and version.version not in known:
            register_model_version(session, version)
        upsert_rows(session, results.table, outcome.rows, RESULT_KEY, results.columns)
        set_document_status(session, [row["document_id"] for row in outcome.rows], outcome.failed, job_id)
        if batch_id is not None:
            flight.finish(session, batch_id, job_id)
    if version:
        known.add(version.version)


def register_model_version(session: Session, info: VersionInfo) -> None:
    """Record what a version id means, once (the first writer wins; versions are content hashes)."""
    stmt = dialect_insert(session, ModelVersion).values(
        version=info.version,
        name=info.name,
        kind=info.kind,
        labels=list(info.labels),
        config=dict(info.config),
        first_seen=utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))


def set_document_status(session: Session, done: list[int], failed: dict[int, str], job_id: str | None = None) -> None:
    """Mark documents done (clearing any earlier error) and each failed one with its own error;
    the job's counters move with them (``lstmq.db.transitions``). ``job_id``: the batch's job."""
    now = utcnow()
    mark_done(session, done, now, job_id)
    mark_failed(session, {doc_id: error[:MAX_ERROR_CHARS] for doc_id, error in failed.items()}, now, job_id)
