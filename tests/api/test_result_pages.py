"""`GET /api/v1/jobs/{id}/results?format=json`: the streamed rows one page at a time, with a
keyset cursor, the same filters (applied in SQL, so pages stay full) and the same columns."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, Document, Image
from tests.support.api import Api, assert_problem, classified_job, running_api
from tests.support.jobs import add_job

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

SCORED = [("World", 0.9), ("Sports", 0.4), ("World", 0.55), None, ("World", 0.7)]


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-pages")) as running:
        yield running


def all_pages(api: Api, job_id: str, query: str) -> tuple[list[dict], int]:
    """Every row, following ``next``; and how many pages it took."""
    rows, after, pages = [], None, 0
    while True:
        cursor = f"&after={after}" if after is not None else ""
        reply = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=json{query}{cursor}", "read")
        assert reply.status == 200, reply.body
        rows, after, pages = rows + reply.json()["results"], reply.json()["next"], pages + 1
        if after is None:
            return rows, pages


def streamed(api: Api, job_id: str, query: str) -> list[dict]:
    body = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=jsonl{query}", "read").body
    return [json.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize(
    "limit, filters, pages",
    [(2, "", 3), (2, "&label=World", 2), (1, "&min_score=0.5&max_score=0.8", 2), (1000, "&status=pending", 1)],
)
def test_pages_hold_the_streamed_rows_in_order(api, limit, filters, pages):
    job_id = classified_job(api, SCORED)
    paged, taken = all_pages(api, job_id, f"&limit={limit}{filters}")
    assert paged == streamed(api, job_id, filters) and paged
    assert taken == pages


def test_a_render_jobs_rows_carry_their_image_path(api):
    job_id, ids = add_job(api.stack.engine, ["a red circle"], model="shapes", task="render")
    with session_scope(api.stack.engine) as session:
        session.get(Document, ids[0]).status = DOC_DONE
        session.add(
            Image(
                document_id=ids[0],
                model="shapes",
                model_version="v1",
                path="x/1.png",
                width=64,
                height=64,
                sha256="0" * 64,
            )
        )
    page = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=json", "read").json()
    assert page == {"results": streamed(api, job_id, ""), "next": None}
    assert page["results"][0]["image_path"] == "x/1.png"


@pytest.mark.parametrize(
    "query, status, words",
    [
        ("format=jsonl&limit=5", 422, "limit and after page the json format"),
        ("format=json&limit=0", 422, "limit"),
        ("format=json&after=-1", 422, "after"),
    ],
)
def test_paging_parameters_are_checked(api, query, status, words):
    job_id = classified_job(api, SCORED[:1])
    assert words in assert_problem(api.call("GET", f"/api/v1/jobs/{job_id}/results?{query}", "read"), status)["detail"]


def test_results_as_parquet_hold_the_streamed_rows(api):
    job_id = classified_job(api, SCORED)
    reply = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=parquet", "read")
    assert reply.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(reply.body)).to_pylist() == streamed(api, job_id, "")


def test_parquet_results_keep_the_filters(api):
    job_id = classified_job(api, SCORED)
    reply = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=parquet&label=World&min_score=0.6", "read")
    assert pq.read_table(io.BytesIO(reply.body)).to_pylist() == streamed(api, job_id, "&label=World&min_score=0.6")


def test_parquet_results_of_no_job_are_a_404_problem(api):
    assert_problem(api.call("GET", "/api/v1/jobs/nope/results?format=parquet", "read"), 404)
