"""`lstmq submit|status|results|jobs --api URL`: the CLI through the HTTP API, on a machine
whose database and broker settings lead nowhere, prints what the database path prints and
exits with the same codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document, Job, utcnow
from tests.support.api import Api, free_port, running_api
from tests.support.inputs import corpus
from tests.support.jobs import add_job
from tests.support.processes import ROOT, run_lstmq, worker_env

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

NOWHERE = {  # a database and a broker nobody listens on: the API path must not touch them
    "LSTMQ_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/nothing",
    "LSTMQ_BROKER_URL": "redis://127.0.0.1:9/0",
}


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-cli")) as running:
        running.stack.start_worker()
        yield running


def remote(api: Api, *args: str, stdin: bytes | None = None, token: str | None = None, url: str | None = None):
    """``lstmq ARGS`` with only LSTMQ_API_URL and LSTMQ_API_TOKEN usable."""
    env = worker_env() | NOWHERE
    env["LSTMQ_API_URL"] = url or f"http://127.0.0.1:{api.port}"
    env["LSTMQ_API_TOKEN"] = token or api.tokens["submit"]
    return subprocess.run(
        [sys.executable, "-m", "lstmq", *args], input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def job(api, tmp_path_factory) -> str:
    source = corpus(tmp_path_factory.mktemp("input") / "news.jsonl", 12, bad_lines=("{broken",))
    done = remote(api, "submit", str(source), "--model", "news", "--batch-size", "5", "--wait")
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert f"{source}:13: " in err and "12 documents queued in 3 batches, 1 rejected" in err
    return done.stdout.decode().splitlines()[-1]


@pytest.mark.parametrize(
    "args",
    [
        ["status", "{job}"],
        ["status", "{job}", "--json"],
        ["results", "{job}"],
        ["results", "{job}", "--format", "csv"],
        ["results", "{job}", "--format", "table"],
        ["results", "{job}", "--label", "Sports"],
        ["results", "{job}", "--failed"],
        ["jobs", "--json", "--limit", "1"],
    ],
)
def test_the_api_path_prints_what_the_database_path_prints(api, job, args):
    args = [arg.format(job=job) for arg in args]
    over_http, direct = remote(api, *args), run_lstmq(*args)
    assert (over_http.returncode, direct.returncode) == (0, 0), over_http.stderr
    assert over_http.stdout == direct.stdout


def test_the_api_path_writes_the_parquet_file_the_database_path_writes(api, job, tmp_path):
    over_http = remote(api, "results", job, "--format", "parquet", "-o", str(tmp_path / "http.parquet"))
    direct = run_lstmq("results", job, "--format", "parquet", "-o", str(tmp_path / "db.parquet"))
    assert (over_http.returncode, direct.returncode) == (0, 0), over_http.stderr
    assert pq.read_table(tmp_path / "http.parquet").equals(pq.read_table(tmp_path / "db.parquet"))


def test_the_jobs_table_lists_the_same_jobs(api, job):
    over_http, direct = remote(api, "jobs"), run_lstmq("jobs")
    assert job[:8] in over_http.stdout.decode()
    assert over_http.stdout == direct.stdout


def test_submit_reads_stdin_and_the_option_overrides_the_environment(api, job):
    lines = b'{"text": "The striker scored twice."}\n{"text": ""}\n'
    sent = remote(
        api, "submit", "-", "--model", "news", "--api", f"http://127.0.0.1:{api.port}", stdin=lines, url="http://x:1"
    )
    assert sent.returncode == 0, sent.stderr
    assert "<stdin>:2: " in sent.stderr.decode()
    status = json.loads(remote(api, "status", sent.stdout.decode().split()[-1], "--json").stdout)
    assert (status["total"], status["rejected"]) == (1, 1)


@pytest.mark.parametrize(
    "args, kwargs, code, words",
    [
        (["status", "nope"], {}, 2, "error: no job 'nope'"),
        (["results", "{job}", "--format", "xml"], {}, 2, "unknown format 'xml'"),
        (["jobs", "--limit", "0"], {}, 2, "--limit must be at least 1"),
        (["submit", "{input}", "--model", "nope"], {}, 2, "unknown model 'nope'"),
        (["submit", "{input}", "{input}", "--model", "news"], {}, 2, "--api sends one input"),
        (["jobs"], {"token": "lstmq_000000000000_" + "x" * 43}, 2, "the API refused LSTMQ_API_TOKEN"),
        (["jobs"], {"url": "http://127.0.0.1:{port}"}, 1, "unreachable"),
        (["jobs"], {"url": "ftp://example"}, 2, "expected http://"),
    ],
)
def test_mistakes_get_one_error_line_and_the_database_paths_exit_code(api, job, tmp_path, args, kwargs, code, words):
    source = corpus(tmp_path / "in.jsonl", 2)
    args = [arg.format(job=job, input=source) for arg in args]
    kwargs = {key: value.format(port=free_port()) for key, value in kwargs.items()}
    done = remote(api, *args, **kwargs)
    assert done.returncode == code, done.stderr
    assert words in done.stderr.decode() and done.stderr.decode().count("\n") == 1


def test_a_read_token_cannot_submit(api, tmp_path):
    done = remote(api, "submit", str(corpus(tmp_path / "in.jsonl", 2)), "--model", "news", token=api.tokens["read"])
    assert done.returncode == 2 and "has scope read; this needs submit" in done.stderr.decode()


def test_a_stalled_job_reads_the_same_over_the_api(api):
    # Last in this module: without a worker no reconciler re-sends the job while it is read.
    for worker in api.stack.workers:
        worker.kill()
    api.stack.workers.clear()
    job_id, _ = add_job(api.stack.engine, ["one", "two"])
    hour_ago, minutes_ago = utcnow() - timedelta(hours=1), utcnow() - timedelta(minutes=10)
    with session_scope(api.stack.engine) as session:
        session.execute(update(Document).where(Document.job_id == job_id).values(updated_at=hour_ago))
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=hour_ago, submitted_at=hour_ago, recovered_at=minutes_ago, recoveries=2)
        )
    printed = {}
    for args in (["status", job_id], ["jobs"], ["jobs", "--json"]):
        over_http, direct = remote(api, *args), run_lstmq(*args)
        assert over_http.stdout == direct.stdout, args
        printed[args[0]] = over_http.stdout.decode()
    assert "stalled since" in printed["status"] and "recovering (re-sent 2x" in printed["status"]
