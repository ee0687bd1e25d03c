"""Webhooks in tests: jobs with a receiver, and a real HTTP receiver on loopback, in a thread,
that answers 503 to the first N requests of each event (then its status) and keeps what it got."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Engine

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.webhooks.events import NOTIFY
from tests.support.jobs import add_job

SECRET = "test-webhook-secret"  # LSTMQ_WEBHOOK_SECRET of the webhook_env fixture


def notified_job(engine: Engine, url: str, texts: list[str]) -> tuple[str, list[int]]:
    """A queued job (as ``add_job``) whose events go to ``url``."""
    job_id, ids = add_job(engine, texts)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        job.options = {**job.options, NOTIFY: [url]}
    return job_id, ids


@dataclass
class Received:
    status: int  # what the receiver answered
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    failures_per_event: int = 0  # answer 503 to the first N requests of each event id
    status: int = 200  # then this
    got: list[Received] = field(default_factory=list)

    def answer(self, body: bytes) -> int:
        event_id = json.loads(body)["id"]
        seen = sum(1 for r in self.got if r.event["id"] == event_id)
        return 503 if seen < self.failures_per_event else self.status

    def accepted(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.status < 300]


@contextmanager
def receiver(failures_per_event: int = 0, status: int = 200) -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            with lock:
                code = state.answer(body)
                state.got.append(Received(code, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"thanks" if code < 300 else b"try later")

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_port}/hook", failures_per_event, status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
