"""Result reuse: a pending document whose text already has a result of the job's model, at the
version installed here, is done without running the model.

``fresh_page`` stands in for ``pending_page`` when a batch is made (``lstmq.dispatch.send``). For
each page of the job's pending documents after its cursor, one INSERT ... SELECT gives every
document whose ``content_hash`` matches a done document with a result of (model, version) a
copy of that result (a row of its own: the same label, score and probabilities, or the same
image file); those documents become done, counted as done and as reused, and only the rest are
returned to be sent. Reused documents never travel the broker nor wait for a model.

The version is the installed model's (``lstmq.modelstore``), as the workers beside this
dispatcher run it; a process without the model installed (an API host) reuses nothing, and the
workers' dispatcher reuses for the pages it sends. Only that exact version is copied: a result
of an older or a newer version never is. ``jobs.options["reuse"] = False`` turns it off.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Protocol

from sqlalchemy import Connection, Row, Table, literal_column, select
from sqlalchemy.orm import Session

from lstmq.db.dialects import STAMPS, among, any_of, bind_of, insert_new_rows, values_for
from lstmq.db.queries import pending_page
from lstmq.db.schema import DOC_DONE, Classification, Document, Image, utcnow
from lstmq.db.transitions import mark_reused
from lstmq.dispatch.wake import notify
from lstmq.errors import ArtifactError, ModelNotFound
from lstmq.modelstore import locate_model, version_id
from lstmq.settings import get_settings

log = logging.getLogger("lstmq.dispatch")

REUSE = "reuse"  # jobs.options key: False when every document must run the model
# Documents one batch-making may reuse: bounds its transaction (a SQLite writer blocks the
# others while it lasts); the dispatcher is woken for the rest at its commit.
MAX_REUSED_PER_CALL = 10_000
RESULTS: dict[str, Table] = {"classify": Classification.__table__, "render": Image.__table__}
KEY = ("document_id", "model", "model_version")
MISSING_RECHECK_S = 10.0  # a model installed here meanwhile is reused within this
_missing: dict[tuple, float] = {}  # (model, model folder) -> when to look for it again
SOURCES_PER_TEXT = 16  # the newest done documents of a text looked at for a result of the version
DOCUMENTS = Document.__table__


class Source(Protocol):
    """A job as the dispatcher makes its batches (``lstmq.dispatch.send.Source``)."""

    id: str
    task: str
    model: str
    options: dict
    cursor: int


def fresh_page(session: Session | Connection, job: Source, limit: int) -> list[Row]:
    """Up to ``limit`` of the job's pending documents after its cursor (as ``pending_page``)
    that found no result to reuse; those that did are done when this returns."""
    job_id = job.id
    version = current_version(job.model) if job.options.get(REUSE, True) else None
    if version is None or job.task not in RESULTS:
        return pending_page(session, job_id, job.cursor, limit)
    kept: list[Row] = []
    reused: list[int] = []
    after, now = job.cursor, utcnow()
    while len(kept) < limit:
        page = pending_page(session, job_id, after, limit)
        copied = copy_results(session, RESULTS[job.task], job.model, version, page) if page else set()
        kept += [doc for doc in page if doc.id not in copied]
        reused += copied
        if len(page) < limit:
            break
        if len(reused) >= MAX_REUSED_PER_CALL:
            notify(session)  # the rest in the next round, at once (PostgreSQL; SQLite within a second)
            break
        after = page[-1].id
    if reused:
        mark_reused(session, reused, now, job_id)
    return kept[:limit]


def copy_results(session: Session | Connection, table: Table, model: str, version: str, page: list[Row]) -> set[int]:
    """Copy into the page's documents (rows with ``id`` and ``content_hash``) the result of
    (model, version) of a done document with the same text; returns the ids that got one. A
    document that already has a row of this version keeps it (not counted).

    Each step reads one table by an index, so no plan depends on statistics: joined in one
    statement, a planner that took a growing results table for a small one scanned every
    result of the version for each page (seconds per page). Documents with the page's hashes
    (the partial index on done ones; usually none, and then this is the only statement), their
    results of the version (the key), the copies."""
    dialect = bind_of(session).dialect.name
    hashes = sorted({doc.content_hash for doc in page})
    candidates = session.execute(_candidates(dialect), {"hashes": values_for(dialect, hashes)}).all()
    if not candidates:
        return set()
    newest: dict[str, list[int]] = {}
    for source_id, content_hash in candidates:
        if len(kept := newest.setdefault(content_hash, [])) < SOURCES_PER_TEXT:
            kept.append(source_id)
    wanted = [source_id for ids in newest.values() for source_id in ids]
    stmt = select(table).where(
        among(bind_of(session), table.c.document_id, wanted), table.c.model == model, table.c.model_version == version
    )
    if table is Image.__table__:
        # The copy names the source's file: a prune that deletes the source waits for this
        # transaction and then sees the copy (lstmq.db.retention); PostgreSQL only (SQLite
        # serialises writers).
        stmt = stmt.with_for_update(read=True)
    found = {row.document_id: row for row in session.execute(stmt)}
    result_of = {h: next((found[i] for i in ids if i in found), None) for h, ids in newest.items()}
    rows = [
        {**_copied(source, table), "document_id": doc.id}
        for doc in page
        if (source := result_of.get(doc.content_hash)) is not None
    ]
    return set(insert_new_rows(session, table, rows, KEY))


@lru_cache(maxsize=4)
def _candidates(dialect: str):
    """Done documents with one of the page's hashes, newest first; built once per dialect (it runs
    for every batch made: building it each time cost more CPU than running it)."""
    done_with_hash = (_done(DOCUMENTS), any_of(dialect, DOCUMENTS.c.content_hash, "hashes"))
    return select(DOCUMENTS.c.id, DOCUMENTS.c.content_hash).where(*done_with_hash).order_by(DOCUMENTS.c.id.desc())


def _copied(source: Row, table: Table) -> dict:
    return {c.name: getattr(source, c.name) for c in table.c if c.name not in ("document_id", *STAMPS)}


def _done(documents):
    """``status = 'done'`` with the constant in the SQL text, as ``ix_documents_done_hash`` is
    declared: given a bound parameter, neither planner can tell the partial index applies."""
    return documents.c.status == literal_column(f"'{DOC_DONE}'")


def current_version(model: str) -> str | None:
    """The installed model's version id, or None when it is not installed here (or broken). A
    model found missing is not looked for again for ``MISSING_RECHECK_S``: finding it missing
    lists every installed model (milliseconds, at every batch of a model this host lacks)."""
    settings = get_settings()
    key = (model, settings.model_dir, settings.home_dir)  # where it was looked for
    if _missing.get(key, 0.0) > time.monotonic():
        return None
    try:
        return version_id(locate_model(model))
    except (ModelNotFound, ArtifactError, OSError) as exc:
        log.debug("no result reuse for model %r here: %s", model, exc)
        _missing[key] = time.monotonic() + MISSING_RECHECK_S
        return None
