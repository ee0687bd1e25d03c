"""The HTTP API as a client sees it: a real `lstmq serve` on a free loopback port, PostgreSQL and
Redis behind it, a token of each scope (tests/support/api.py). Here: the service routes, tokens
and scopes, and errors as problem objects.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

import lstmq.api as api_package
from lstmq.api.tokens import SCOPES, create_token, grants, revoke_token
from lstmq.db.engine import session_scope
from lstmq.db.schema import Job, Schedule, ScheduleRun, utcnow
from tests.support.api import GOOD, Api, assert_problem, running_api
from tests.support.jobs import add_batch, add_job, add_results

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api")) as running:
        yield running


# --- service ---------------------------------------------------------------------------------


def test_healthz_needs_no_token_and_says_both_services_are_reachable(api):
    reply = api.call("GET", "/healthz", scope=None)
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_the_api_never_loads_torch():
    # Beside tests/core/test_import_boundary.py, which walks lstmq and producer the same way.
    modules = sorted(m.name for m in pkgutil.walk_packages(api_package.__path__, "lstmq.api."))
    code = f"import sys\nfor name in {modules!r}: __import__(name)\nprint('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "False"), proc.stderr
    assert "lstmq.api.app" in modules


def test_docs_and_the_openapi_description_are_served(api):
    assert api.call("GET", "/api/docs", scope=None).status == 200
    paths = api.call("GET", "/api/openapi.json", scope=None).json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}/results", "/api/v1/images/{path}"} <= paths.keys()


def test_models_lists_the_installed_models(api):
    models = {m["name"]: m for m in api.call("GET", "/api/v1/models", "read").json()["models"]}
    assert models["news"]["kind"] == "classifier" and "World" in models["news"]["labels"]


def test_metrics_count_jobs_by_state_and_documents_by_model_and_status(api):
    add_job(api.stack.engine, ["one", "two"])
    text = api.call("GET", "/metrics", "read").body.decode()
    assert 'lstmq_jobs{state="queued"}' in text
    assert 'lstmq_documents{model="news",status="pending"}' in text
    assert 'lstmq_queue_messages{queue="lstmq.classify"}' in text


def test_metrics_show_each_schedules_latest_psi_and_expected_accuracy(api):
    with session_scope(api.stack.engine) as session:
        schedule = Schedule(name="metrics-wire", path_glob="/x/*.jsonl", task="classify", model="news", every_s=60)
        session.add(schedule)
        session.flush()
        schedule_id = schedule.id
    for mix in ([("World", 0.9)] * 9 + [("Sports", 0.7)], [("Sports", 0.7)] * 9 + [("World", 0.9)]):
        job_id, ids = add_job(api.stack.engine, [f"t{i}" for i in range(10)])
        add_results(api.stack.engine, job_id, ids, mix, version="metrics-v1")
        with session_scope(api.stack.engine) as session:
            session.add(ScheduleRun(schedule_id=schedule_id, trigger="beat", state="ok", job_id=job_id))
    text = api.call("GET", "/metrics", "read").body.decode()

    def value(name):
        return float(text.split(f'{name}{{schedule="metrics-wire"}} ')[1].split()[0])

    assert value("lstmq_schedule_expected_accuracy") == pytest.approx(0.72)
    assert value("lstmq_schedule_label_psi") > 0.2


def test_metrics_show_the_backlog_by_priority_and_owner_and_what_is_in_flight(api):
    job_id, ids = add_job(api.stack.engine, ["one", "two", "three"])
    with session_scope(api.stack.engine) as session:
        job = session.get(Job, job_id)
        job.priority, job.owner = "low", "metrics-owner"
    add_batch(api.stack.engine, job_id, ids[:1], sent_at=utcnow() - timedelta(seconds=30))
    text = api.call("GET", "/metrics", "read").body.decode()
    assert 'lstmq_backlog_documents{owner="metrics-owner",priority="low"} 3.0' in text
    assert 'lstmq_batches_in_flight{queue="lstmq.classify",state="queued"}' in text
    lag = next(line for line in text.splitlines() if line.startswith("lstmq_dispatch_lag_seconds "))
    assert float(lag.split()[1]) >= 30


# --- authentication and scopes -----------------------------------------------------------------

ROUTES = [  # (method, path, scope it needs)
    ("GET", "/api/v1/jobs", "read"),
    ("GET", "/api/v1/models", "read"),
    ("GET", "/metrics", "read"),
    ("GET", "/api/v1/images/x.png", "read"),
    ("POST", "/api/v1/jobs?model=news", "submit"),
    ("POST", "/api/v1/jobs/0/cancel", "admin"),
    ("POST", "/api/v1/jobs/0/requeue", "admin"),
    ("GET", "/api/v1/schedules", "read"),
    ("POST", "/api/v1/schedules/x/run", "admin"),
    ("GET", "/api/v1/jobs/0/review-sample", "read"),
    ("GET", "/api/v1/jobs/0/quality", "read"),
    ("POST", "/api/v1/jobs/0/reviews", "review"),
]


@pytest.mark.parametrize("method, path, needed", ROUTES)
def test_without_a_token_every_route_is_401_with_a_bearer_challenge(api, method, path, needed):
    reply = api.call(method, path, scope=None)
    assert_problem(reply, 401)
    assert reply.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, needed", ROUTES)
@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_reaches_exactly_the_routes_it_grants(api, method, path, needed, scope):
    reply = api.call(method, path, scope, body=GOOD if method == "POST" else None)
    if not grants(scope, needed):
        assert needed in assert_problem(reply, 403)["detail"]
    else:
        assert reply.status not in (401, 403), reply.body


@pytest.mark.parametrize("token", ["lstmq_000000000000_" + "x" * 43, "not-a-token", ""])
def test_unknown_or_malformed_tokens_are_401(api, token):
    assert_problem(api.call("GET", "/api/v1/jobs", token), 401)


def test_a_revoked_token_is_401_at_once(api):
    with session_scope(api.stack.engine) as session:
        token = create_token(session, "soon-revoked", "read")
    assert api.call("GET", "/api/v1/jobs", token).status == 200
    with session_scope(api.stack.engine) as session:
        revoke_token(session, "soon-revoked")
    assert_problem(api.call("GET", "/api/v1/jobs", token), 401)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/v1/jobs/no-such-job", 404),
        ("GET", "/api/v1/jobs/no-such-job/results", 404),
        ("POST", "/api/v1/jobs/no-such-job/cancel", 404),
        ("GET", "/api/v1/no-such-route", 404),
        ("DELETE", "/api/v1/jobs", 405),
    ],
)
def test_errors_are_problem_objects(api, method, path, status):
    assert_problem(api.call(method, path), status)


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=many", "limit"),
        ("limit=0", "limit"),
        ("state=running", "state"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(api, query, field):
    problem = assert_problem(api.call("GET", f"/api/v1/jobs?{query}"), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert field in problem["detail"]


@pytest.mark.parametrize(
    "query, field",
    [("task=classify", "model"), ("model=news&batch_size=0", "batch_size"), ("model=news&format=xml", "format")],
)
def test_bad_submit_parameters_are_422_naming_the_field(api, query, field):
    problem = assert_problem(api.submit(GOOD, query), 422)
    assert field in problem["detail"]


@pytest.mark.parametrize(
    "query, body, headers, status, words",
    [
        ("model=nope", GOOD, {}, 422, "unknown model 'nope'"),
        ("model=news&task=render", GOOD, {}, 422, "needs a generator"),
        ("model=news&task=paint", GOOD, {}, 422, "unknown task 'paint'"),
        ("model=news", b"", {}, 422, "empty body"),
        ("model=news", GOOD, {"Content-Encoding": "br"}, 415, "gzip"),
        ("model=news", b"\x00\x01binary", {}, 422, "binary"),
        ("model=news&format=csv", b"title\nx\n", {}, 422, "no column 'text'"),
        ("model=news&notify=http%3A%2F%2F127.0.0.1%3A9%2Fhook", GOOD, {}, 400, "needs LSTMQ_WEBHOOK_SECRET"),
    ],
)
def test_unusable_submissions_are_refused_with_one_line(api, query, body, headers, status, words):
    assert words in assert_problem(api.submit(body, query, **headers), status)["detail"]
