"""The quality estimates on real data: the shipped news classifier's results of 2,000 AG News dev
documents go into a job; a reviewer who answers the true label on the job's random sample of 300
gets an agreement close to the true accuracy, inside its interval, and the expected accuracy
is close too."""

from __future__ import annotations

import pytest

from lstmq.bench.quality import read_dev
from lstmq.db.engine import session_scope
from lstmq.db.schema import Classification, Job, ModelVersion
from lstmq.reviews import SEED_KEY, quality, record, sample
from lstmq.worker.ml.classifier.inference import load_classifier
from tests.support.jobs import add_job

pytestmark = pytest.mark.slow
DOCS, REVIEWED, POINTS = 2000, 300, 0.03


@pytest.fixture
def news_job(migrated_db, shared_data):
    """(job id, true labels by external id, true accuracy): the news classifier's real results."""
    rows = read_dev(shared_data / "ag_news" / "dev.jsonl.gz", DOCS)
    clf = load_classifier("news")
    predictions = clf.predict([row["text"] for row in rows])
    job_id, ids = add_job(migrated_db, [row["text"] for row in rows])
    with session_scope(migrated_db) as session:
        session.add(ModelVersion(version=clf.version, name="news", kind="classifier", labels=clf.labels))
        session.get(Job, job_id).options = {SEED_KEY: "fixed"}  # a fixed sample: the test is deterministic
        for doc_id, p in zip(ids, predictions, strict=True):
            probs = dict(zip(clf.labels, p.probs, strict=True))
            session.add(
                Classification(
                    document_id=doc_id,
                    model="news",
                    model_version=clf.version,
                    label=p.label,
                    score=p.score,
                    probs=probs,
                )
            )
    truth = {str(i): row["label"] for i, row in enumerate(rows)}
    accuracy = sum(p.label == row["label"] for p, row in zip(predictions, rows, strict=True)) / DOCS
    return job_id, truth, accuracy


@pytest.fixture
def reviewed(migrated_db, news_job):
    """The job's quality after a reviewer answered the true label on its random sample of 300."""
    job_id, truth, accuracy = news_job
    with session_scope(migrated_db) as session:
        docs = sample(session, job_id, "random", REVIEWED)
        record(session, job_id, [{"id": d.id, "label": truth[d.id]} for d in docs], "oracle", "random")
    with session_scope(migrated_db) as session:
        return quality(session, job_id), accuracy


def test_agreement_on_a_random_sample_is_within_3_points_of_true_accuracy(reviewed):
    found, accuracy = reviewed
    assert found["reviewed_random"] == REVIEWED and abs(found["agreement"] - accuracy) <= POINTS


def test_the_agreement_interval_contains_the_true_accuracy(reviewed):
    found, accuracy = reviewed
    assert found["interval"][0] <= accuracy <= found["interval"][1]


def test_expected_accuracy_is_within_3_points_of_true_accuracy(reviewed):
    found, accuracy = reviewed
    assert abs(found["expected_accuracy"] - accuracy) <= POINTS
