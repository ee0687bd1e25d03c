"""A real ``lstmq serve`` for tests: PostgreSQL and Redis behind it (``open_stack``), a token
of each scope, and a small HTTP client that sees what any client sees."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from lstmq.api.tokens import SCOPES, create_token
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, Classification, Document, Job
from tests.support.jobs import add_job
from tests.support.processes import LstmqProcess, worker_env
from tests.support.stacks import Stack, open_stack

SERVE_READY_S = 30
PROBLEM_KEYS = {"type", "title", "status", "detail"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Api:
    """A running server, the stack behind it, and a token per scope."""

    port: int
    stack: Stack
    server: LstmqProcess
    tokens: dict[str, str]

    def call(self, method: str, path: str, scope: str | None = "admin", body=None, headers=None) -> Reply:
        sent = dict(headers or {})
        if scope is not None:
            sent["Authorization"] = f"Bearer {self.tokens.get(scope, scope)}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            chunked = body is not None and not isinstance(body, bytes)
            conn.request(method, path, body=body, headers=sent, encode_chunked=chunked)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def submit(self, body: bytes, query: str = "model=news", scope: str = "submit", **headers) -> Reply:
        return self.call("POST", f"/api/v1/jobs?{query}", scope, body, headers)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_api(request, home: Path, **settings: str) -> Iterator[Api]:
    """PostgreSQL + Redis, a token per scope, and `lstmq serve` (stopped afterwards); ``settings``:
    LSTMQ_* of the server beside the stack's (``webhook_secret="..."``)."""
    with open_stack(request, "services", home) as stack:
        with session_scope(stack.engine) as session:
            tokens = {scope: create_token(session, f"test-{scope}", scope) for scope in SCOPES}
        port = free_port()
        server = LstmqProcess(worker_env(**settings), home / "serve.log", "serve", "--port", str(port))
        try:
            server.wait_for_log("Application startup complete", SERVE_READY_S)
            yield Api(port, stack, server, tokens)
        finally:
            server.stop()


def jsonl(*records: dict | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


GOOD = jsonl(
    {"id": "a", "text": "Stocks rallied as the central bank held rates."}, {"id": "b", "text": "The match ended 2-1."}
)


def assert_problem(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert PROBLEM_KEYS <= problem.keys() and problem["status"] == status
    assert "Traceback" not in problem["detail"]
    return problem


def classified_job(api: Api, results: list[tuple[str, float] | None]) -> str:
    """A job whose documents have these (label, score) results; None leaves one pending."""
    job_id, doc_ids = add_job(api.stack.engine, [f"text {i}" for i in range(len(results))])
    with session_scope(api.stack.engine) as session:
        for doc_id, result in zip(doc_ids, results, strict=True):
            if result is not None:
                label, score = result
                session.get(Document, doc_id).status = DOC_DONE
                session.add(
                    Classification(
                        document_id=doc_id, model="news", model_version="v1", label=label, score=score, probs={}
                    )
                )
    return job_id


def bulk_classified_job(api: Api, n: int) -> str:
    """A finished job of ``n`` classified documents, written set-based (PostgreSQL)."""
    job_id = uuid.uuid4().hex
    with session_scope(api.stack.engine) as session:
        # The documents go in done, so the job's counters say so too (as the worker's writes would).
        session.add(Job(id=job_id, task="classify", model="news", state="queued", total=n, done_count=n))
    with api.stack.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO documents (job_id, external_id, source, record_no, line_no, content_hash, text, status, updated_at)"
                " SELECT :job, 'doc-' || g, 'bulk', g, g + 1, md5(g::text) || md5(g::text), 'text ' || g, 'done', now()"
                " FROM generate_series(0, :n - 1) AS g"
            ),
            {"job": job_id, "n": n},
        )
        conn.execute(
            text(
                "INSERT INTO classifications (document_id, model, model_version, label, score, probs, flags, created_at, updated_at)"
                " SELECT id, 'news', 'v1', 'World', 0.5 + (id % 50) / 100.0, '{}', '[]', now(), now()"
                " FROM documents WHERE job_id = :job"
            ),
            {"job": job_id},
        )
    return job_id
