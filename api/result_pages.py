"""Results one page at a time, keyset paged by document id: the JSON form of
``GET /api/v1/jobs/{id}/results`` and the console's results table (with the texts).

Filters run in SQL, so every page is full until the last; the cursor is the last document id
of the previous page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from lstmq.db.schema import Classification, Document, Image, Job

TEXT_CHARS = 400  # of each text on a page; the streamed results have none, the database all
PAGE_ROWS = 50


@dataclass(frozen=True)
class ResultFilter:
    label: str | None = None
    status: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    after: int = 0  # the last document id of the previous page


def short_text():
    return func.substr(Document.text, 1, TEXT_CHARS).label("text")


def results_page(session: Session, job: Job, where: ResultFilter, limit: int = PAGE_ROWS) -> tuple[list, int | None]:
    """Up to ``limit`` documents after ``where.after`` with their result, and the next cursor."""
    result = Classification if job.task == "classify" else Image
    columns = [Classification.label, Classification.score] if result is Classification else [Image.path]
    stmt = (
        select(Document.id, Document.external_id, Document.status, Document.error, short_text(), *columns)
        .add_columns(result.model_version)  # after the others: rows keep the same shape per task
        .outerjoin(result, and_(result.document_id == Document.id, result.model == job.model))
        .where(Document.job_id == job.id, Document.id > where.after)
        .order_by(Document.id, result.updated_at.desc())
    )
    if where.status:
        stmt = stmt.where(Document.status == where.status)
    if result is Classification:
        stmt = _scored(stmt, where)
    fetched = list(session.execute(stmt.limit(limit * 2 + 1)))
    rows = _first_per_document(fetched)
    more = len(rows) > limit or len(fetched) > limit * 2
    return rows[:limit], rows[:limit][-1].id if more else None


def _first_per_document(rows) -> list:
    # A document with results from two model versions comes twice: keep the newest.
    seen: set[int] = set()
    return [row for row in rows if not (row.id in seen or seen.add(row.id))]


def _scored(stmt, where: ResultFilter):
    if where.label:
        stmt = stmt.where(Classification.label == where.label)
    if where.min_score is not None:
        stmt = stmt.where(Classification.score >= where.min_score)
    if where.max_score is not None:
        stmt = stmt.where(Classification.score <= where.max_score)
    return stmt
