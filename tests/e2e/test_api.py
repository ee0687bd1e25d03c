"""The API end to end: a file submitted over HTTP is classified by a real worker and its results
come back over HTTP; a large upload and a large result set pass through the server without
growing its memory (its peak resident size, VmHWM, read from /proc)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api, bulk_classified_job, running_api
from tests.support.inputs import corpus

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

UPLOAD_BYTES = 64 << 20
UPLOAD_GROWTH_LIMIT = 24 << 20  # bytes of peak RSS an upload of UPLOAD_BYTES may add
RESULT_ROWS = 200_000
RESULTS_GROWTH_LIMIT = 32 << 20  # the rows as dicts would take well over 100 MB


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-e2e")) as running:
        yield running


def reset_peak_rss(api: Api) -> int:
    """Start the server's peak RSS afresh (Linux: write 5 to clear_refs); returns its RSS now."""
    Path(f"/proc/{api.server.proc.pid}/clear_refs").write_text("5")
    return peak_rss(api)


def peak_rss(api: Api) -> int:
    """The server's peak resident set size in bytes, since the last reset."""
    for line in Path(f"/proc/{api.server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_file_submitted_over_http_is_classified_and_its_results_come_back(api, tmp_path):
    api.stack.start_worker()
    created = api.submit(
        corpus(tmp_path / "news.jsonl", 30, bad_lines=("{broken",)).read_bytes(), "model=news&batch_size=8"
    )
    assert created.status == 201, created.body
    job = created.json()
    assert (job["total"], job["rejected"], job["batches"]) == (30, 1, 4)
    api.stack.wait_finished(job["id"])
    status = api.call("GET", f"/api/v1/jobs/{job['id']}", "read").json()
    assert (status["state"], status["done"], status["pending"], status["rejected"]) == ("finished", 30, 0, 1)
    rows = [json.loads(line) for line in api.call("GET", f"/api/v1/jobs/{job['id']}/results", "read").body.splitlines()]
    assert [row["id"] for row in rows] == [f"doc-{i}" for i in range(30)]
    assert all(row["label"] in {"World", "Sports", "Business", "Sci/Tech"} and row["status"] == "done" for row in rows)


def rejected_lines(total_bytes: int) -> Iterator[bytes]:
    """About ``total_bytes`` of JSON Lines without a text field (read and rejected, never stored),
    then ten good ones."""
    line = json.dumps({"note": "x" * 1000}).encode() + b"\n"
    block = line * 64
    for _ in range(total_bytes // len(block)):
        yield block
    yield b"".join(json.dumps({"text": f"Good line {i}."}).encode() + b"\n" for i in range(10))


def test_a_large_upload_does_not_grow_the_server_memory(api):
    api.submit(b'{"text": "warm up"}\n')
    before = reset_peak_rss(api)
    reply = api.submit(rejected_lines(UPLOAD_BYTES))
    assert reply.status == 201, reply.body
    assert reply.json()["total"] == 10 and reply.json()["rejected"] > 60_000
    assert peak_rss(api) - before < UPLOAD_GROWTH_LIMIT


def test_a_large_result_set_streams_without_growing_the_server_memory(api):
    job_id = bulk_classified_job(api, RESULT_ROWS)
    assert api.call("GET", f"/api/v1/jobs/{job_id}", "read").json()["done"] == RESULT_ROWS
    before = reset_peak_rss(api)
    body = api.call("GET", f"/api/v1/jobs/{job_id}/results?min_score=0.5", "read").body
    assert body.count(b"\n") == RESULT_ROWS
    assert peak_rss(api) - before < RESULTS_GROWTH_LIMIT
