"""What a job page shows beyond ``lstmq status`` and its results (``lstmq.api.result_pages``): label
counts and a score histogram, the least confident and the failed documents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from lstmq.api.result_pages import short_text
from lstmq.db.schema import DOC_FAILED, Classification, Document, Job

SCORE_BINS = 10
FEW_ROWS = 10


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
        select(Document.external_id, short_text(), Classification.label, Classification.score)
        .select_from(_classified(job))
        .where(Document.job_id == job.id)
        .order_by(Classification.score, Document.id)
    )
    return list(session.execute(stmt.limit(limit)))


def failed_documents(session: Session, job: Job, limit: int = FEW_ROWS) -> list:
    stmt = select(Document.external_id, short_text(), Document.error).where(
        Document.job_id == job.id, Document.status == DOC_FAILED
    )
    return list(session.execute(stmt.order_by(Document.id).limit(limit)))
