"""Result reuse over HTTP: `reuse=false` on POST /api/v1/jobs (and Client.submit) turns it off for
the job; the job object, the console and /metrics count reused documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from lstmq.client import Client
from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.dispatch.reuse import REUSE
from tests.support.api import GOOD, Api, running_api
from tests.support.jobs import add_job

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-reuse")) as running:
        yield running


@pytest.fixture(scope="module")
def reused_job(api) -> str:
    """A finished job of 3 documents, 2 of them reused, as the dispatcher's counters leave it."""
    job_id, _ = add_job(api.stack.engine, ["one", "two", "three"], model="news")
    with session_scope(api.stack.engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(state="finished", done_count=3, reused_count=2))
    return job_id


def options_of(api: Api, job_id: str) -> dict:
    with session_scope(api.stack.engine) as session:
        return session.get(Job, job_id).options


def test_reuse_false_turns_reuse_off_for_the_job(api):
    reply = api.submit(GOOD, "model=news&reuse=false")
    assert reply.status == 201, reply.body
    assert options_of(api, reply.json()["id"])[REUSE] is False


def test_a_job_submitted_without_the_parameter_reuses(api):
    reply = api.submit(GOOD, "model=news")
    assert options_of(api, reply.json()["id"]).get(REUSE, True) is True


def test_client_submit_with_reuse_off_turns_it_off_for_the_job(api, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(GOOD)
    client = Client(f"http://127.0.0.1:{api.port}", api.tokens["submit"])
    assert options_of(api, client.submit(tmp_path / "in.jsonl", model="news", reuse=False).id)[REUSE] is False


def test_the_job_object_counts_reused_documents_among_the_done(api, reused_job):
    job = api.call("GET", f"/api/v1/jobs/{reused_job}", "read").json()
    assert (job["done"], job["reused"]) == (3, 2)


def test_the_job_list_counts_reused_documents(api, reused_job):
    jobs = api.call("GET", "/api/v1/jobs", "read").json()["jobs"]
    assert next(job["reused"] for job in jobs if job["id"] == reused_job) == 2


def test_metrics_count_reused_documents_per_model(api, reused_job):
    text = api.call("GET", "/metrics", "read").body.decode()
    assert 'lstmq_documents_reused{model="news"} 2.0' in text


def test_the_console_job_page_shows_the_reused_count(api, reused_job):
    login = api.call("POST", "/login", None, urlencode({"token": api.tokens["read"]}).encode(), FORM)
    cookie = login.headers["set-cookie"].split(";")[0]
    page = api.call("GET", f"/jobs/{reused_job}", None, headers={"Cookie": cookie}).body.decode()
    assert re.search(r'<td data-field="reused">2</td>', page)
