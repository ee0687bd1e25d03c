"""What a job page shows beyond ``lstmq status``: label counts and a score histogram, the least
confident and the failed documents, and one page of results with their texts (keyset paged)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from lstmq.db.schema import DOC_FAILED, Classification, Document, Image, Job

SCORE_BINS = 10
TEXT_CHARS = 400  # of each text on a page; the results download has none, the database all
PAGE_ROWS = 50
FEW_ROWS = 10


@dataclass(frozen=True)
class ResultFilter:
    label: str | None = None
    status: str | None = None
    after: int = 0  # the last document id of the previous page


def _classified(job: Job):
    on = and_(Classification.document_id == Document.id, Classification.model == job.model)
    return Document.__table__.join(Classification, on)


@dataclass(frozen=True)
class ScoreSummary:
    labels: list[tuple[str, int]]  # (label, documents), most frequent first
    histogram: list[int]  # documents per score bin [0, 0.1), ..., [0.9, 1.0]


def score_summary(session: Session, job: Job) -> ScoreSummary:
    """Label counts and the score histogram of a classify job in one scan (any database).

    A document classified by two versions of the model counts once per version: counting
    distinct documents instead costs a sort, twice the time on a million documents."""
    score, width = Classification.score, 1 / SCORE_BINS
    bins = [_count_if(and_(score >= i * width, score < (i + 1) * width)) for i in range(SCORE_BINS - 1)]
    stmt = (
        select(Classification.label, func.count(), *bins, _count_if(score >= 1 - width))
        .select_from(_classified(job))
        .where(Document.job_id == job.id)
        .group_by(Classification.label)
    )
    rows = session.execute(stmt).all()
    labels = sorted(((row[0], row[1]) for row in rows), key=lambda item: (-item[1], item[0]))
    return ScoreSummary(labels, [sum(int(row[2 + i]) for row in rows) for i in range(SCORE_BINS)])


def _count_if(condition):
    return func.sum(case((condition, 1), else_=0))


def least_confident(session: Session, job: Job, limit: int = FEW_ROWS) -> list:
    stmt = (
        select(Document.external_id, _text(), Classification.label, Classification.score)
        .select_from(_classified(job))
        .where(Document.job_id == job.id)
        .order_by(Classification.score, Document.id)
    )
    return list(session.execute(stmt.limit(limit)))


def failed_documents(session: Session, job: Job, limit: int = FEW_ROWS) -> list:
    stmt = select(Document.external_id, _text(), Document.error).where(
        Document.job_id == job.id, Document.status == DOC_FAILED
    )
    return list(session.execute(stmt.order_by(Document.id).limit(limit)))


def results_page(session: Session, job: Job, where: ResultFilter, limit: int = PAGE_ROWS) -> tuple[list, int | None]:
    """Up to ``limit`` documents after ``where.after`` with their result, and the next cursor."""
    result = Classification if job.task == "classify" else Image
    columns = [Classification.label, Classification.score] if result is Classification else [Image.path]
    stmt = (
        select(Document.id, Document.external_id, Document.status, Document.error, _text(), *columns)
        .outerjoin(result, and_(result.document_id == Document.id, result.model == job.model))
        .where(Document.job_id == job.id, Document.id > where.after)
        .order_by(Document.id, result.updated_at.desc())
    )
    if where.status:
        stmt = stmt.where(Document.status == where.status)
    if where.label and result is Classification:
        stmt = stmt.where(Classification.label == where.label)
    fetched = list(session.execute(stmt.limit(limit * 2 + 1)))
    rows = _first_per_document(fetched)
    more = len(rows) > limit or len(fetched) > limit * 2
    return rows[:limit], rows[:limit][-1].id if more else None


def _first_per_document(rows) -> list:
    # A document with results from two model versions comes twice: keep the newest.
    seen: set[int] = set()
    return [row for row in rows if not (row.id in seen or seen.add(row.id))]


def _text():
    return func.substr(Document.text, 1, TEXT_CHARS).label("text")
