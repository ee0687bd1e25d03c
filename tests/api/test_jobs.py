"""The jobs part of the HTTP API against a real server (no worker: jobs are queued, results are
written here): submitting files, idempotent retries, listing, status, cancel and requeue,
results and their filters, and images that must never come from outside their folder."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.settings import get_settings
from tests.support.api import GOOD, Api, assert_problem, classified_job, jsonl, running_api
from tests.support.dispatch import send_all
from tests.support.jobs import add_job
from tests.support.processes import run_lstmq
from tests.support.queued import queued_doc_ids, queued_payloads

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-jobs")) as running:
        yield running


# --- submitting --------------------------------------------------------------------------------


def test_submit_returns_the_job_counts_and_first_rejected_lines_and_keeps_them_all(api):
    bad = [f'{{"id": "bad-{i}"}}' for i in range(30)]
    reply = api.submit(jsonl(*bad, {"id": "ok", "text": "A good line."}))
    assert reply.status == 201, reply.body
    created = reply.json()
    assert (created["total"], created["rejected"], created["batches"]) == (1, 30, 1)
    assert created["first_rejected"][0] == {"line": 1, "reason": "missing text field 'text'"}
    assert len(created["first_rejected"]) == 20
    assert reply.headers["location"] == f"/api/v1/jobs/{created['id']}"
    kept = api.call("GET", f"/api/v1/jobs/{created['id']}/rejected", "read").json()
    assert kept["rejected"] == 30 and [line["line"] for line in kept["lines"]] == list(range(1, 31))
    with session_scope(api.stack.engine) as session:
        assert session.get(Job, created["id"]).state == "queued"  # the dispatcher's to send


def test_submit_reads_gzip_csv_and_text_bodies(api):
    csv_body = b"id,text\nc1,First row of text.\nc2,Second row.\n"
    gz = api.submit(gzip.compress(csv_body), **{"Content-Encoding": "gzip", "Content-Type": "text/csv"})
    assert (gz.status, gz.json()["total"]) == (201, 2)
    txt = api.submit(b"one line\n\nanother line\n", "model=news&format=txt")
    assert (txt.status, txt.json()["total"]) == (201, 2)
    named = api.submit(jsonl({"key": "k1", "body": "Some text."}), "model=news&text_field=body&id_field=key")
    with session_scope(api.stack.engine) as session:
        assert session.get(Job, named.json()["id"]).sources == ["<upload>"]


def test_strict_refuses_the_whole_input_with_its_bad_lines_and_records_nothing(api):
    with session_scope(api.stack.engine) as session:
        before = session.scalar(select(func.count()).select_from(Job))
    problem = assert_problem(api.submit(jsonl({"id": 1, "text": "fine"}, "{oops"), "model=news&strict=true"), 422)
    assert problem["first_rejected"] == [{"line": 2, "reason": problem["first_rejected"][0]["reason"]}]
    with session_scope(api.stack.engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == before


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_job(api):
    first = api.submit(GOOD, **{"Idempotency-Key": "retry-1"})
    again = api.submit(GOOD, **{"Idempotency-Key": "retry-1"})
    assert first.status == again.status == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    with session_scope(api.stack.engine) as session:
        assert session.scalar(select(func.count()).where(Job.id == first.json()["id"])) == 1
    other_token = api.submit(GOOD, scope="admin", **{"Idempotency-Key": "retry-1"})
    assert other_token.json()["id"] != first.json()["id"]
    changed = api.submit(GOOD + GOOD, **{"Idempotency-Key": "retry-1"})
    assert "different request" in assert_problem(changed, 422)["detail"]


def test_a_refused_first_request_does_not_hold_its_idempotency_key(api):
    assert_problem(api.submit(b"{bad\n", **{"Idempotency-Key": "retry-2"}), 422)
    assert api.submit(b"{bad\n", **{"Idempotency-Key": "retry-2"}).status == 422  # runs again, not 409


# --- jobs ----------------------------------------------------------------------------------------


def test_status_is_the_object_lstmq_status_json_prints(api):
    job_id = api.submit(GOOD).json()["id"]
    over_http = api.call("GET", f"/api/v1/jobs/{job_id}", "read").json()
    assert over_http.pop("health") is None  # beside the CLI's object: set while the job is stalled
    printed = json.loads(run_lstmq("status", job_id, "--json").stdout)
    rates = ("docs_per_s", "eta_s")
    assert {k: v for k, v in over_http.items() if k not in rates} == {
        k: v for k, v in printed.items() if k not in rates
    }


def test_jobs_are_listed_newest_first_in_pages_and_filter_by_state(api):
    ids = [add_job(api.stack.engine, ["text"])[0] for _ in range(3)]
    add_job(api.stack.engine, ["cancelled one"], state="cancelled")
    first = api.call("GET", "/api/v1/jobs?limit=2&state=queued", "read").json()
    second = api.call("GET", f"/api/v1/jobs?limit=2&state=queued&before={first['next']}", "read").json()
    listed = [job["id"] for job in first["jobs"] + second["jobs"]]
    assert listed[:3] == ids[::-1]
    assert all(job["state"] == "queued" for job in first["jobs"] + second["jobs"])
    assert {"id", "state", "total", "done", "failed", "pending", "rejected", "schedule"} <= first["jobs"][0].keys()
    cancelled = api.call("GET", "/api/v1/jobs?state=cancelled", "read").json()["jobs"]
    assert cancelled and all(job["state"] == "cancelled" for job in cancelled)
    assert api.call("GET", "/api/v1/jobs?schedule=no-such-schedule", "read").json() == {"jobs": [], "next": None}


def test_admin_cancels_and_requeues(api):
    job_id, doc_ids = add_job(api.stack.engine, ["first", "second"])
    sent = api.call("POST", f"/api/v1/jobs/{job_id}/requeue?batch_size=1").json()
    assert sent == {"id": job_id, "docs": 2}
    send_all(api.stack.engine)
    mine = [payload for payload in queued_payloads(get_settings().broker_url) if payload["job_id"] == job_id]
    assert [len(payload["ids"]) for payload in mine] == [1, 1]  # in the batch size it was given
    assert set(doc_ids) <= set(queued_doc_ids(get_settings().broker_url))
    assert api.call("POST", f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
    assert "cancelled" in assert_problem(api.call("POST", f"/api/v1/jobs/{job_id}/requeue"), 400)["detail"]


# --- results -------------------------------------------------------------------------------------


def results(api: Api, job_id: str, query: str = "") -> list[dict]:
    reply = api.call("GET", f"/api/v1/jobs/{job_id}/results?{query}", "read")
    assert reply.status == 200, reply.body
    return [json.loads(line) for line in reply.body.splitlines()]


def test_results_filter_by_label_status_and_score(api):
    job_id = classified_job(api, [("World", 0.9), ("Sports", 0.4), ("World", 0.55), None])
    assert [r["id"] for r in results(api, job_id)] == ["0", "1", "2", "3"]
    assert [r["id"] for r in results(api, job_id, "label=World")] == ["0", "2"]
    assert [r["id"] for r in results(api, job_id, "min_score=0.5")] == ["0", "2"]
    assert [r["id"] for r in results(api, job_id, "max_score=0.6&min_score=0.4")] == ["1", "2"]
    assert [r["id"] for r in results(api, job_id, "status=pending")] == ["3"]
    assert results(api, job_id, "status=failed") == []


def test_results_as_csv_have_the_cli_columns(api):
    job_id = classified_job(api, [("World", 0.9)])
    reply = api.call("GET", f"/api/v1/jobs/{job_id}/results?format=csv", "read")
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.body.decode().splitlines() == [
        "id,label,score,model,model_version,status,error",
        "0,World,0.9,news,v1,done,",
    ]


def test_score_filters_on_a_render_job_are_422(api):
    job_id, _ = add_job(api.stack.engine, ["a red circle"], model="shapes", task="render")
    assert (
        "classify jobs"
        in assert_problem(api.call("GET", f"/api/v1/jobs/{job_id}/results?min_score=0.5"), 422)["detail"]
    )
    assert "classify jobs" in assert_problem(api.call("GET", f"/api/v1/jobs/{job_id}/results?label=x"), 422)["detail"]


# --- images --------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture(scope="module")
def images(api) -> Path:
    """The image folder with one PNG inside, and a PNG and symlinks that lead outside it."""
    folder = get_settings().images
    (folder / "job").mkdir(parents=True, exist_ok=True)
    (folder / "job" / "0.png").write_bytes(PNG)
    (folder / "notes.txt").write_text("not an image")
    outside = folder.parent / "secret.png"
    outside.write_bytes(PNG)
    (folder / "escape.png").symlink_to(outside)
    (folder / "up").symlink_to(folder.parent, target_is_directory=True)
    return folder


def test_an_image_inside_the_folder_is_served_as_png(api, images):
    reply = api.call("GET", "/api/v1/images/job/0.png", "read")
    assert (reply.status, reply.headers["content-type"], reply.body) == (200, "image/png", PNG)


@pytest.mark.parametrize(
    "path",
    [
        "../secret.png",
        "job/../../secret.png",
        "%2e%2e/secret.png",
        "..%2fsecret.png",
        "%2F" + "etc/passwd",
        "/%2Fetc/passwd",
        "job/0.png%00.png",
        "escape.png",
        "up/secret.png",
        "notes.txt",
        "job",
        "missing.png",
    ],
)
def test_paths_that_leave_the_folder_or_are_not_images_are_404(api, images, path):
    reply = api.call("GET", f"/api/v1/images/{path}", "read")
    assert_problem(reply, 404)
    assert reply.body.find(PNG) == -1
