"""Reviews over HTTP against a real server: the review sample, answers from a review token, the
refusal of unknown ids and labels, and the job's quality."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.api import Api, assert_problem, running_api
from tests.support.jobs import add_job, add_results

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-reviews")) as running:
        yield running


@pytest.fixture
def job(api) -> str:
    """Six news documents labelled World, scores 0.5 to 1.0."""
    job_id, ids = add_job(api.stack.engine, [f"text {i}" for i in range(6)])
    add_results(api.stack.engine, job_id, ids, [("World", 0.5 + i / 10) for i in range(6)])
    return job_id


def answer(api, job_id, answers, scope="review", query="") -> dict:
    body, headers = json.dumps(answers).encode(), {"Content-Type": "application/json"}
    return api.call("POST", f"/api/v1/jobs/{job_id}/reviews{query}", scope, body, headers)


def test_the_review_sample_lists_documents_with_the_models_label_and_score(api, job):
    found = api.call("GET", f"/api/v1/jobs/{job}/review-sample?mode=least-confident&n=2", "read").json()
    assert [(d["id"], d["label"], d["score"]) for d in found["documents"]] == [("0", "World", 0.5), ("1", "World", 0.6)]
    assert found["labels"] == ["World", "Sports", "Business", "Sci/Tech"]


def test_a_review_token_records_answers_and_the_sample_shows_them_last(api, job):
    reply = answer(api, job, [{"id": "0", "label": "Sports"}], query="?mode=least-confident")
    assert reply.status == 200 and reply.json()["reviewed"] == 1
    found = api.call("GET", f"/api/v1/jobs/{job}/review-sample?mode=least-confident&n=2", "read").json()
    assert [(d["id"], d["reviewed"]) for d in found["documents"]] == [("1", None), ("0", "Sports")]


def test_a_submit_token_may_not_review(api, job):
    assert "needs review" in assert_problem(answer(api, job, [{"id": "0", "label": "World"}], "submit"), 403)["detail"]


def test_unknown_ids_and_labels_are_a_422_naming_them(api, job):
    problem = assert_problem(answer(api, job, [{"id": "x9", "label": "World"}, {"id": "1", "label": "Weather"}]), 422)
    assert "x9" in problem["detail"] and "Weather" in problem["detail"]


def test_quality_gives_agreement_with_its_interval_beside_expected_accuracy(api, job):
    answer(api, job, [{"id": str(i), "label": "World" if i < 3 else "Sports"} for i in range(4)])
    found = api.call("GET", f"/api/v1/jobs/{job}/quality", "read").json()
    assert (found["reviewed_random"], found["agreement"]) == (4, 0.75)
    assert found["interval"][0] < 0.75 < found["interval"][1]
    assert found["expected_accuracy"] == pytest.approx(0.75)
    assert found["labels"]["World"]["reviewed"] == 4
