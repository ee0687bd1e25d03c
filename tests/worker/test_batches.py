"""The batch logic of the worker against a real database (SQLite and PostgreSQL).

A small fake classifier stands in for the model here, so these tests pin down the write rules
(skips, upserts, per-document failures, one transaction); the e2e tests use the real model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

import lstmq.worker.classify
from lstmq.db.schema import JOB_CANCELLED, Classification, Document, ModelVersion
from lstmq.worker.batches import give_up
from lstmq.worker.classify import classify_batch
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts


@dataclass
class FakePrediction:
    label: str | None
    score: float | None
    probs: list[float] | None
    flags: list[str] = field(default_factory=list)
    error: str | None = None


class FakeClassifier:
    """Labels a text "long" when it has more than 3 words; fails texts containing "boom"."""

    name, labels, max_tokens, device = "fake", ["short", "long"], 64, "cpu"

    def __init__(self, version: str = "v1"):
        self.version = version
        self.seen: list[str] = []

    def predict(self, texts):
        self.seen.extend(texts)
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> FakePrediction:
        if "boom" in text:
            return FakePrediction(None, None, None, error="cannot classify boom")
        p_long = 0.9 if len(text.split()) > 3 else 0.2
        return FakePrediction("long" if p_long > 0.5 else "short", max(p_long, 1 - p_long), [1 - p_long, p_long])


@pytest.fixture
def fake_model(monkeypatch):
    model = FakeClassifier()
    monkeypatch.setattr(lstmq.worker.classify, "load_classifier", lambda name, device="auto", **_: model)
    return model


TEXTS = ["a short one", "this text has more than three words", "two words", "and another fairly long text"]


def test_a_batch_records_one_result_per_document_and_marks_them_done(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS)
    report = classify_batch(batch_of(job_id, "fake", ids), migrated_db)

    assert report == {"done": 4, "failed": 0, "skipped": 0}
    assert status_counts(migrated_db, job_id) == {"done": 4}
    assert set(results_per_document(migrated_db, job_id).values()) == {1}
    with migrated_db.connect() as conn:
        row = conn.execute(select(Classification).where(Classification.document_id == ids[1])).one()
        version = conn.execute(select(ModelVersion)).one()
    assert (row.label, row.model, row.model_version) == ("long", "fake", "v1")
    assert row.probs == {"short": pytest.approx(0.1), "long": pytest.approx(0.9)}
    assert (version.version, version.name, version.labels) == ("v1", "fake", ["short", "long"])


def test_a_redelivered_batch_skips_done_documents_and_adds_no_rows(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS)
    batch = batch_of(job_id, "fake", ids)
    classify_batch(batch, migrated_db)
    fake_model.seen.clear()

    assert classify_batch(batch, migrated_db) == {"done": 0, "failed": 0, "skipped": 4}
    assert fake_model.seen == []
    assert sorted(results_per_document(migrated_db, job_id).values()) == [1, 1, 1, 1]


def test_rewriting_a_result_updates_the_row_instead_of_duplicating_it(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS)
    classify_batch(batch_of(job_id, "fake", ids), migrated_db)
    with migrated_db.begin() as conn:  # a crash after the write, before the ack: back to pending
        conn.execute(Document.__table__.update().values(status="pending"))
    fake_model.labels = ["long", "short"]  # the same version id, different output: rows rewritten

    classify_batch(batch_of(job_id, "fake", ids), migrated_db)
    assert sorted(results_per_document(migrated_db, job_id).values()) == [1, 1, 1, 1]
    with migrated_db.connect() as conn:
        probs = conn.scalar(select(Classification.probs).where(Classification.document_id == ids[1]))
    assert probs == {"long": pytest.approx(0.1), "short": pytest.approx(0.9)}


def test_a_document_that_fails_alone_is_recorded_failed_while_the_rest_succeed(migrated_db, fake_model):
    texts = ["fine text here and more", "boom goes this one", "also fine"]
    job_id, ids = add_job(migrated_db, texts)
    assert classify_batch(batch_of(job_id, "fake", ids), migrated_db)["failed"] == 1

    assert status_counts(migrated_db, job_id) == {"done": 2, "failed": 1}
    with migrated_db.connect() as conn:
        error = conn.scalar(select(Document.error).where(Document.id == ids[1]))
    assert error == "cannot classify boom"
    assert ids[1] not in results_per_document(migrated_db, job_id)


def test_an_unknown_model_fails_every_document_with_the_reason(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS, model="no-such-model")
    report = classify_batch(batch_of(job_id, "no-such-model", ids), migrated_db)

    assert report["failed"] == 4
    with migrated_db.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert len(errors) == 4 and all("no-such-model" in e for e in errors)


def test_a_cancelled_job_is_skipped_and_its_documents_stay_pending(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS, state=JOB_CANCELLED)
    assert classify_batch(batch_of(job_id, "fake", ids), migrated_db)["skipped"] == 4
    assert fake_model.seen == []
    assert status_counts(migrated_db, job_id) == {"pending": 4}


def test_ids_outside_the_job_are_ignored(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS[:2])
    other_job, other_ids = add_job(migrated_db, TEXTS[2:])
    batch = batch_of(job_id, "fake", ids + other_ids)

    assert classify_batch(batch, migrated_db) == {"done": 2, "failed": 0, "skipped": 2}
    assert status_counts(migrated_db, other_job) == {"pending": 2}


def test_giving_up_a_poison_batch_fails_its_unfinished_documents(migrated_db, fake_model):
    job_id, ids = add_job(migrated_db, TEXTS)
    classify_batch(batch_of(job_id, "fake", ids[:1]), migrated_db)

    report = give_up(migrated_db, batch_of(job_id, "fake", ids), "worker died 3 times")
    assert report == {"done": 0, "failed": 3, "skipped": 1}
    assert status_counts(migrated_db, job_id) == {"done": 1, "failed": 3}
