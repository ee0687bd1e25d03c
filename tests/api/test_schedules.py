"""Schedules over HTTP, with the CLI's rules: list, add (validated), pause/resume, run now and
history; admin for changes, read for the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.api import Api, assert_problem, running_api

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-schedules")) as running:
        yield running


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "a.jsonl").write_text(json.dumps({"id": "1", "text": "Rates held."}) + "\n{broken\n")
    return folder


def add(api: Api, scope: str = "admin", **fields):
    return api.call(
        "POST", "/api/v1/schedules", scope, json.dumps(fields).encode(), {"Content-Type": "application/json"}
    )


def test_add_run_pause_and_read_the_history(api, corpus):
    created = add(api, name="nightly", path=f"{corpus}/*.jsonl", model="news", every="1d")
    assert created.status == 201, created.body
    assert created.json()["name"] == "nightly" and created.json()["every_s"] == 86400
    ran = api.call("POST", "/api/v1/schedules/nightly/run").json()
    assert (ran["state"], ran["files"], ran["queued"], ran["rejected"]) == ("ok", 1, 1, 1)
    assert ran["job_id"] and ran["problems"][0].endswith(
        "a.jsonl:2: malformed JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    assert api.call("POST", "/api/v1/schedules/nightly/pause").json()["paused"] is True
    listed = api.call("GET", "/api/v1/schedules", "read").json()["schedules"]
    assert [(s["name"], s["paused"], s["last_run"]["queued"]) for s in listed] == [("nightly", True, 1)]
    history = api.call("GET", "/api/v1/schedules/nightly/history?limit=5", "read").json()
    assert [(r["trigger"], r["state"], r["job"]) for r in history["runs"]] == [("manual", "ok", ran["job_id"])]
    assert api.call("POST", "/api/v1/schedules/nightly/resume").json()["paused"] is False


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"every": "1d"}, "matches no file"),
        ({"every": "1x"}, "invalid interval '1x'"),
        ({}, "exactly one of --every"),
        ({"every": "1d", "cron": "* * * * *"}, "exactly one of --every"),
        ({"every": "1d", "model": "nope"}, "unknown model 'nope'"),
    ],
)
def test_a_bad_schedule_is_422_with_the_clis_message(api, corpus, fields, words):
    body = {"name": "bad", "path": f"{corpus}/*.jsonl", "model": "news"} | fields
    if words == "matches no file":
        body["path"] = f"{corpus}/*.csv"
    assert words in assert_problem(add(api, **body), 422)["detail"]


def test_a_schedule_with_receivers_needs_the_servers_webhook_secret(api, corpus):
    body = {"name": "hooked", "path": f"{corpus}/*.jsonl", "model": "news", "every": "1d"}
    problem = assert_problem(add(api, **body, notify=["http://127.0.0.1:9/hook"]), 400)
    assert "LSTMQ_WEBHOOK_SECRET" in problem["detail"]


def test_a_schedule_added_with_reuse_false_says_so(api, corpus):
    created = add(api, name="fresh-runs", path=f"{corpus}/*.jsonl", model="news", every="1d", reuse=False)
    assert created.status == 201, created.body
    assert created.json()["reuse"] is False


def test_changes_need_admin_and_unknown_schedules_are_404(api, corpus):
    assert_problem(add(api, "submit", name="x", path=f"{corpus}/*.jsonl", model="news", every="1d"), 403)
    assert_problem(api.call("POST", "/api/v1/schedules/nope/run"), 404)
    assert_problem(api.call("GET", "/api/v1/schedules/nope/history", "read"), 404)
    assert_problem(api.call("POST", "/api/v1/schedules/nope/pause", "submit"), 403)
