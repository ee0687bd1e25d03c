"""`notify` on POST /api/v1/jobs: receivers recorded on the job, unsafe ones refused as a problem
before the body is read."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.webhooks.events import NOTIFY
from tests.support.api import GOOD, Api, assert_problem, running_api

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("api")
    with running_api(request, home, webhook_secret="api-test-secret", webhook_allow_private="true") as running:
        yield running


def test_notify_records_each_receiver_on_the_job(api):
    query = f"model=news&notify={quote(HOOK, safe='')}&notify={quote(HOOK + '2', safe='')}"
    reply = api.submit(GOOD, query)
    assert reply.status == 201, reply.body
    with session_scope(api.stack.engine) as session:
        assert session.get(Job, reply.json()["id"]).options[NOTIFY] == [HOOK, HOOK + "2"]


def test_a_receiver_that_is_not_http_is_a_422_problem(api):
    problem = assert_problem(api.submit(GOOD, f"model=news&notify={quote('file:///etc/passwd', safe='')}"), 422)
    assert problem["type"] == "urn:lstmq:unsafe-receiver" and "only http and https" in problem["detail"]
