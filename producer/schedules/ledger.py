"""What a schedule already read and queued, in the database: file cursors and the ledger.

Both are written in the transaction that records the run's documents, so a crash leaves
either all three (documents, ledger, cursors) or none of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lstmq.db.dialects import upsert
from lstmq.db.schema import CorpusDoc, CorpusFile
from lstmq.producer.schedules.cursors import Cursor
from lstmq.readers.records import Record

LEDGER_CHUNK = 500  # keys per IN (...) lookup


@dataclass(frozen=True)
class Candidate:
    """A record read by a run, with its ledger key and text hash."""

    key: str  # id:<external id> when the record has one, else sha256:<text hash>
    content_hash: str
    record: Record


def candidate(record: Record) -> Candidate:
    digest = hashlib.sha256(record.text.encode("utf-8")).hexdigest()
    key = f"id:{record.external_id}" if record.external_id is not None else f"sha256:{digest}"
    return Candidate(key, digest, record)


def newest_by_key(records: Iterable[Record]) -> dict[str, Candidate]:
    """One candidate per key; a later record with the same id supersedes an earlier one."""
    found: dict[str, Candidate] = {}
    for record in records:
        item = candidate(record)
        found.pop(item.key, None)
        found[item.key] = item
    return found


def unprocessed(
    session: Session, schedule_id: int, candidates: dict[str, Candidate], version: str, reprocess: bool
) -> list[Candidate]:
    """Candidates whose text this schedule has not queued before (for ``version`` if reprocessing)."""
    keys = list(candidates)
    done: set[str] = set()
    if session.scalar(select(CorpusDoc.doc_key).where(CorpusDoc.schedule_id == schedule_id).limit(1)) is None:
        return list(candidates.values())  # a first run: no lookups
    for start in range(0, len(keys), LEDGER_CHUNK):
        rows = session.execute(
            select(CorpusDoc.doc_key, CorpusDoc.content_hash, CorpusDoc.model_version).where(
                CorpusDoc.schedule_id == schedule_id, CorpusDoc.doc_key.in_(keys[start : start + LEDGER_CHUNK])
            )
        )
        done.update(
            key
            for key, digest, ver in rows
            if digest == candidates[key].content_hash and (not reprocess or ver == version)
        )
    return [item for key, item in candidates.items() if key not in done]


def record_ledger(session: Session, schedule_id: int, queued: list[tuple[Candidate, int]], version: str) -> None:
    rows = [
        {
            "schedule_id": schedule_id,
            "doc_key": item.key,
            "content_hash": item.content_hash,
            "model_version": version,
            "document_id": doc_id,
        }
        for item, doc_id in queued
    ]
    upsert(session, CorpusDoc, rows, ("schedule_id", "doc_key"))


def load_cursors(session: Session, schedule_id: int) -> dict[str, Cursor]:
    rows = session.scalars(select(CorpusFile).where(CorpusFile.schedule_id == schedule_id))
    return {
        row.path: Cursor(row.size, row.mtime_ns, row.inode, row.offset, row.lines, row.head_hash, row.head_len)
        for row in rows
    }


def store_cursors(session: Session, schedule_id: int, cursors: dict[str, Cursor], gone: list[str]) -> None:
    if gone:
        session.execute(delete(CorpusFile).where(CorpusFile.schedule_id == schedule_id, CorpusFile.path.in_(gone)))
    rows = [{"schedule_id": schedule_id, "path": path, **vars_of(cursor)} for path, cursor in cursors.items()]
    upsert(session, CorpusFile, rows, ("schedule_id", "path"))


def vars_of(cursor: Cursor) -> dict:
    return {name: getattr(cursor, name) for name in Cursor.__dataclass_fields__}
