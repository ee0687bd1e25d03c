"""Reviews: reproducible samples that grow by extension, validated answers, and a job's quality."""

from __future__ import annotations

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.errors import InputError
from lstmq.reviews import SEED_KEY, export, progress, quality, record, sample
from tests.support.jobs import add_job, add_results

SCORES = [0.9, 0.4, 0.8, 0.3, 0.95, 0.6, 0.7, 0.5, 0.85, 0.35]


@pytest.fixture
def job(migrated_db):
    """A finished news job of 10 documents, all labelled World with SCORES."""
    job_id, ids = add_job(migrated_db, [f"text {i}" for i in range(10)])
    add_results(migrated_db, job_id, ids, [("World", score) for score in SCORES])
    return job_id


def ids_of(engine, job_id, mode, n):
    with session_scope(engine) as session:
        return [doc.id for doc in sample(session, job_id, mode, n)]


def review(engine, job_id, answers, mode="random"):
    with session_scope(engine) as session:
        return record(session, job_id, answers, "tester", mode)


def test_a_sample_is_the_same_each_time_it_is_asked_for(migrated_db, job):
    assert ids_of(migrated_db, job, "random", 5) == ids_of(migrated_db, job, "random", 5)


def test_asking_for_more_extends_the_same_sample(migrated_db, job):
    small, large = ids_of(migrated_db, job, "random", 4), ids_of(migrated_db, job, "random", 8)
    assert large[:4] == small


def test_least_confident_samples_the_lowest_scores_first(migrated_db, job):
    picked = ids_of(migrated_db, job, "least-confident", 3)
    assert picked == [str(SCORES.index(score)) for score in sorted(SCORES)[:3]]


def test_unreviewed_documents_come_first(migrated_db, job):
    first = ids_of(migrated_db, job, "random", 4)
    review(migrated_db, job, [{"id": first[0], "label": "World"}])
    assert ids_of(migrated_db, job, "random", 4) == first[1:] + first[:1]


def test_unknown_ids_and_labels_are_refused_by_name_and_nothing_is_stored(migrated_db, job):
    with pytest.raises(InputError, match="unknown document ids.*nope.*unknown labels Weather"):
        review(migrated_db, job, [{"id": "nope", "label": "World"}, {"id": "1", "label": "Weather"}])
    with session_scope(migrated_db) as session:
        assert progress(session, job) == (0, 10)


def test_a_second_review_of_a_document_replaces_the_first(migrated_db, job):
    review(migrated_db, job, [{"id": "1", "label": "Sports"}])
    review(migrated_db, job, [{"id": "1", "label": "World"}])
    with session_scope(migrated_db) as session:
        assert list(export(session, "news")) == [{"text": "text 1", "label": "World"}]


def test_agreement_counts_only_random_sample_reviews(migrated_db, job):
    review(migrated_db, job, [{"id": "0", "label": "World"}, {"id": "1", "label": "Sports"}])
    review(migrated_db, job, [{"id": "2", "label": "Sports"}], mode="least-confident")
    with session_scope(migrated_db) as session:
        found = quality(session, job)
    assert (found["reviewed"], found["reviewed_random"], found["agreement"]) == (3, 2, 0.5)


def test_expected_accuracy_is_the_mean_top_score(migrated_db, job):
    with session_scope(migrated_db) as session:
        assert quality(session, job)["expected_accuracy"] == pytest.approx(sum(SCORES) / len(SCORES))


def test_quality_warns_when_expected_accuracy_is_outside_the_agreement_interval(migrated_db, job):
    wrong = [{"id": str(i), "label": "Sports"} for i in range(10)]  # the model was always wrong
    review(migrated_db, job, wrong)
    with session_scope(migrated_db) as session:
        found = quality(session, job)
    assert found["agreement"] == 0.0 and "outside" in found["warning"]


def test_reading_a_sample_changes_nothing_in_the_job(migrated_db, job):
    ids_of(migrated_db, job, "random", 5)
    with session_scope(migrated_db) as session:
        assert session.get(Job, job).options == {}


def test_a_seed_in_the_jobs_options_fixes_its_sample(migrated_db, job):
    with session_scope(migrated_db) as session:
        session.get(Job, job).options = {SEED_KEY: "a"}
    first = ids_of(migrated_db, job, "random", 10)
    with session_scope(migrated_db) as session:
        session.get(Job, job).options = {SEED_KEY: "b"}
    assert ids_of(migrated_db, job, "random", 10) != first
