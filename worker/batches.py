"""The batch's database code, shared by both tasks: what is left to do, and one write of the outcome.

Reading the batch's state and writing its outcome are two short transactions; the model runs
between them with no transaction open, so a slow batch never holds locks (SQLite included).
Results are keyed by (document, model, model version) and upserted: a redelivered or retried
batch rewrites the same rows and never adds a second one.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import Engine, Row, bindparam, func, select
from sqlalchemy.orm import Session

from lstmq import stages
from lstmq.contract import MAX_TEXT_CHARS, BatchPayload
from lstmq.db.dialects import any_of, dialect_insert, upsert_rows, values_for
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


def docs_to_process(engine: Engine, batch: BatchPayload, state: list[Row] | None = None) -> list[Row]:
    """The batch's documents that still need a result, with their recorded texts, from its
    ``state`` (read here unless the task already read it for its check): none if the job is
    cancelled or gone; documents already done (a redelivered batch) and ids not in this job are
    skipped."""
    rows = batch_state(engine, batch) if state is None else state
    if rows and rows[0].state == JOB_CANCELLED:
        log.info("job %s is cancelled: batch skipped", batch.job_id)
        return []
    return sorted((row for row in rows if row.status != DOC_DONE), key=lambda row: row.id)


def batch_state(engine: Engine, batch: BatchPayload) -> list[Row]:
    """Each of the batch's documents in its job: status and recorded text (the part a model is
    given, ``MAX_TEXT_CHARS``), with the job's state and model. One statement outside a
    transaction: no BEGIN and ROLLBACK round trips. Primary-key lookups only (a document's job
    is compared here, not in SQL: given ``documents.job_id = ?`` a planner with stale statistics
    may scan the whole job by ``ix_documents_job_status``)."""
    dialect = engine.dialect.name
    params = {"job": batch.job_id, "ids": values_for(dialect, batch.ids)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return [row for row in conn.execute(_state_statement(dialect), params) if row.job_id == batch.job_id]


@lru_cache(maxsize=4)
def _state_statement(dialect: str):
    """``batch_state``'s statement, built once per dialect (parameters: ``job``, ``ids``)."""
    docs, jobs = Document.__table__, Job.__table__
    text = func.substr(docs.c.text, 1, MAX_TEXT_CHARS).label("text")
    return (
        select(docs.c.id, docs.c.status, text, docs.c.job_id, jobs.c.state, jobs.c.model)
        .join(jobs, jobs.c.id == bindparam("job"))
        .where(any_of(dialect, docs.c.id, "ids"))
    )


def refusal(batch: BatchPayload, rows: list[Row]) -> str | None:
    """Why ``batch`` cannot be what lstmq sent for its job (None when it can): lstmq sends the
    job's model, so a batch naming another one writes no result. Its texts are the recorded
    ones (read by ``batch_state``), whatever else a message carries."""
    if rows and rows[0].model != batch.model:
        return f"model {batch.model!r} is not the job's model {rows[0].model!r}"
    return None


def fail_all(docs: list[Row], error: str) -> Outcome:
    return Outcome(failed={doc.id: error for doc in docs})


def report(batch: BatchPayload, docs: list[Row], outcome: Outcome) -> dict:
    """Counts for the task log; documents not processed were skipped."""
    return {"done": len(outcome.rows), "failed": len(outcome.failed), "skipped": len(set(batch.ids)) - len(docs)}


def process_batch(
    engine: Engine,
    batch: BatchPayload,
    results: Results,
    work: Callable[[list[Row]], Outcome],
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
