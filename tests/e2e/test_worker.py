"""End to end: producer → broker → a real `lstmq worker` subprocess → database.

Every test runs on the embedded setup (SQLite + filesystem broker, no servers) and on this
machine's PostgreSQL + Redis. One worker per setup serves the whole module (a worker start
costs seconds); on PostgreSQL + Redis it runs two prefork processes, so copies of one batch
can be processed at the same time. Workers are killed at the end; every wait is bounded.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from lstmq.db.schema import Document, Job
from lstmq.queue import send_batch
from tests.support.inputs import corpus
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts
from tests.support.stacks import BACKENDS, open_stack

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory):
    with open_stack(request, request.param, tmp_path_factory.mktemp(request.param)) as stack:
        stack.start_worker("--concurrency=2")  # threads sharing one model, on both backends
        yield stack


def failed_without_error(engine: Engine, job_id: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.job_id == job_id, Document.status == "failed", Document.error.is_(None))
        )


def test_every_submitted_document_gets_exactly_one_result(stack, tmp_path):
    report = stack.submit(corpus(tmp_path / "in.jsonl", 150))
    stack.wait_finished(report.job_id)

    assert status_counts(stack.engine, report.job_id) == {"done": 150}
    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 150 and set(per_doc.values()) == {1}


def test_bad_input_is_counted_and_every_document_is_accounted_for(stack, tmp_path):
    bad = ('{"id": "x1", "text": ""}', "{not json", '{"id": "x2"}', '{"id": "doc-3", "text": "duplicate id"}')
    path = corpus(tmp_path / "in.jsonl", 60, bad)
    report = stack.submit(path)
    stack.wait_finished(report.job_id)

    records_read = len(path.read_text().splitlines())
    with stack.engine.connect() as conn:
        total, rejected = conn.execute(select(Job.total, Job.rejected).where(Job.id == report.job_id)).one()
    counts = status_counts(stack.engine, report.job_id)
    assert (total, rejected) == (60, 4)
    assert total + rejected == records_read
    assert counts["done"] + counts["failed"] == total
    assert failed_without_error(stack.engine, report.job_id) == 0
    assert len(results_per_document(stack.engine, report.job_id)) == counts["done"]


def test_a_batch_delivered_twice_still_leaves_one_row_per_document(stack, tmp_path):
    report = stack.submit(corpus(tmp_path / "in.jsonl", 100))
    with stack.engine.connect() as conn:
        docs = conn.execute(select(Document.id, Document.text).where(Document.job_id == report.job_id)).all()
    for start in range(0, len(docs), 20):  # every batch a second time, right behind the first
        chunk = docs[start : start + 20]
        send_batch(
            stack.app, "classify", batch_of(report.job_id, "news", [d.id for d in chunk], [d.text for d in chunk])
        )
    stack.wait_finished(report.job_id)

    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 100 and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, report.job_id) == {"done": 100}


def test_a_batch_for_a_model_the_worker_lacks_fails_each_document_with_the_reason(stack):
    texts = ["some text", "more text", "and more"]
    job_id, ids = add_job(stack.engine, texts, model="vanished-model", dispatched=True)
    send_batch(stack.app, "classify", batch_of(job_id, "vanished-model", ids))
    stack.wait_finished(job_id)

    with stack.engine.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert len(errors) == 3 and all("vanished-model" in (e or "") for e in errors)
    assert results_per_document(stack.engine, job_id) == {}
