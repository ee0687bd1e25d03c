"""What a job page reads beyond `lstmq status` (lstmq.api.console.queries), on SQLite and PostgreSQL:
label counts and score bins (edges included), the least confident, failed documents, and
keyset pages of results filtered by label and status."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from lstmq.api.console.queries import failed_documents, least_confident, score_summary
from lstmq.api.result_pages import ResultFilter, results_page
from lstmq.db.engine import session_scope
from lstmq.db.queries import get_job
from lstmq.db.schema import Classification, Document
from tests.support.jobs import add_job

SCORED = [("World", 0.05), ("Sports", 0.1), ("World", 0.55), ("World", 0.95), ("Sports", 1.0)]


def scored_job(engine) -> tuple[str, list[int]]:
    """Five classified documents (SCORED), then one failed and one pending."""
    job_id, ids = add_job(engine, [f"text {i}" for i in range(len(SCORED) + 2)])
    with session_scope(engine) as session:
        for doc_id, (label, score) in zip(ids, SCORED, strict=False):
            session.add(
                Classification(document_id=doc_id, model="news", model_version="v1", label=label, score=score, probs={})
            )
        session.execute(update(Document).where(Document.id.in_(ids[: len(SCORED)])).values(status="done"))
        session.execute(update(Document).where(Document.id == ids[-2]).values(status="failed", error="boom"))
    return job_id, ids


def test_labels_and_score_bins(migrated_db):
    job_id, _ = scored_job(migrated_db)
    with session_scope(migrated_db) as session:
        summary = score_summary(session, get_job(session, job_id))
    assert summary.labels == [("World", 3), ("Sports", 2)]
    assert summary.histogram == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]  # 0.1 opens the second bin; 1.0 is in the last


def test_least_confident_first_and_failed_documents_with_their_errors(migrated_db):
    job_id, _ = scored_job(migrated_db)
    with session_scope(migrated_db) as session:
        job = get_job(session, job_id)
        least = [(row.label, row.score) for row in least_confident(session, job, limit=2)]
        failed = [(row.external_id, row.error) for row in failed_documents(session, job)]
    assert least == [("World", 0.05), ("Sports", 0.1)]
    assert failed == [("5", "boom")]


def test_results_come_in_keyset_pages_filtered_by_label_and_status(migrated_db):
    job_id, ids = scored_job(migrated_db)
    with session_scope(migrated_db) as session:
        job = get_job(session, job_id)
        first, after = results_page(session, job, ResultFilter(), limit=4)
        rest, end = results_page(session, job, ResultFilter(after=after), limit=4)
        world, _ = results_page(session, job, ResultFilter(label="World"))
        pending, _ = results_page(session, job, ResultFilter(status="pending"))
    assert [row.id for row in first + rest] == ids and (after, end) == (ids[3], None)
    assert [row.score for row in world] == [0.05, 0.55, 0.95]
    assert [(row.id, row.label) for row in pending] == [(ids[-1], None)]


def test_a_document_with_results_of_two_versions_shows_once_with_the_newest(migrated_db):
    job_id, ids = scored_job(migrated_db)
    with session_scope(migrated_db) as session:
        session.add(
            Classification(
                document_id=ids[0],
                model="news",
                model_version="v2",
                label="Business",
                score=0.7,
                probs={},
                updated_at=datetime(2100, 1, 1, tzinfo=UTC),
            )
        )
    with session_scope(migrated_db) as session:
        rows, after = results_page(session, get_job(session, job_id), ResultFilter(), limit=2)
    assert [(row.id, row.label) for row in rows] == [(ids[0], "Business"), (ids[1], "Sports")] and after == ids[1]
