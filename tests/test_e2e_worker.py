"""End to end: producer → broker → a real `lstmq worker` subprocess → database.

Each test runs twice: on the embedded setup (SQLite + filesystem broker, no servers) and on
this machine's PostgreSQL + Redis. Workers are real processes started with the test's
environment and always stopped in teardown; every wait is bounded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from lstmq.db.schema import Document, Job
from tests.helpers_worker import (
    JOB_TIMEOUT_S,
    WorkerProcess,
    add_job,
    batch_of,
    job_finished,
    results_per_document,
    status_counts,
    wait_until,
    worker_env,
)

SAMPLES = Path(__file__).resolve().parents[1] / "lstmq" / "samples"
BATCH = 20


@dataclass
class Stack:
    """One test's services, settings and worker processes."""

    name: str
    home: Path
    engine: Engine
    app: object
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, *args: str, **settings: str) -> WorkerProcess:
        log = self.home / f"worker{len(self.workers)}.log"
        # One torch thread: on a busy shared CI host, more threads spin against each other.
        worker = WorkerProcess(worker_env(**settings), log, "--threads=1", *args)
        self.workers.append(worker)
        return worker.wait_ready()

    def submit(self, path: Path, model: str = "news", batch_size: int = BATCH):
        from producer.readers import read_sources, resolve_sources
        from producer.submit import submit_records

        items = read_sources(resolve_sources([str(path)]))
        return submit_records(self.engine, self.app, items, task="classify", model=model,
                              batch_size=batch_size, sources=[str(path)])

    def wait_finished(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
        wait_until(lambda: job_finished(self.engine, job_id), timeout_s, what=f"job {job_id} to finish"
                   + "".join(f"\n--- {w.log_path.name}:\n{w.log()[-2000:]}" for w in self.workers))


def _empty_postgres(url: str) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["embedded", "services"])
def stack(request, lstmq_env):
    import redis

    from lstmq.db.engine import get_engine
    from lstmq.db.migrate import upgrade
    from lstmq.queue import make_celery

    # LSTMQ_TEST_MODEL_DIR: run against models other than the shipped ones (e.g. fresh from training).
    models = {"model_dir": os.environ["LSTMQ_TEST_MODEL_DIR"]} if os.environ.get("LSTMQ_TEST_MODEL_DIR") else {}
    if request.param == "embedded":
        home = lstmq_env(**models)
    else:
        broker = request.getfixturevalue("redis_url")
        redis.Redis.from_url(broker).flushdb()
        home = lstmq_env(database_url=_empty_postgres(request.getfixturevalue("pg_url")), broker_url=broker, **models)
    home.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    upgrade(engine)
    stack = Stack(request.param, home, engine, make_celery())
    yield stack
    for worker in stack.workers:
        worker.kill()  # a warm shutdown costs seconds per test; recovery is tested above anyway
    engine.dispose()


def corpus(path: Path, n: int, bad_lines: tuple[str, ...] = ()) -> Path:
    """``n`` news-like JSONL records made from the shipped samples, then ``bad_lines``."""
    texts = [json.loads(line)["text"] for line in (SAMPLES / "news.jsonl").read_text().splitlines()]
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"doc-{i}", "text": f"{texts[i % len(texts)]} Update {i}."}) + "\n")
        out.writelines(line + "\n" for line in bad_lines)
    return path


def failed_without_error(engine: Engine, job_id: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(text("count(*)")).select_from(Document)
            .where(Document.job_id == job_id, Document.status == "failed", Document.error.is_(None))
        )


def test_every_submitted_document_gets_exactly_one_result(stack, tmp_path):
    stack.start_worker()
    report = stack.submit(corpus(tmp_path / "in.jsonl", 150))
    stack.wait_finished(report.job_id)

    assert status_counts(stack.engine, report.job_id) == {"done": 150}
    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 150 and set(per_doc.values()) == {1}


def test_bad_input_is_counted_and_every_document_is_accounted_for(stack, tmp_path):
    bad = ('{"id": "x1", "text": ""}', "{not json", '{"id": "x2"}', '{"id": "doc-3", "text": "duplicate id"}')
    path = corpus(tmp_path / "in.jsonl", 60, bad)
    stack.start_worker()
    report = stack.submit(path)
    stack.wait_finished(report.job_id)

    records_read = len(path.read_text().splitlines())
    with stack.engine.connect() as conn:
        total, rejected = conn.execute(select(Job.total, Job.rejected).where(Job.id == report.job_id)).one()
    counts = status_counts(stack.engine, report.job_id)
    assert (total, rejected) == (60, 4)
    assert total + rejected == records_read
    assert counts["done"] + counts["failed"] == total
    assert failed_without_error(stack.engine, report.job_id) == 0
    assert len(results_per_document(stack.engine, report.job_id)) == counts["done"]


def test_a_batch_delivered_twice_still_leaves_one_row_per_document(stack, tmp_path):
    from lstmq.queue import send_batch

    report = stack.submit(corpus(tmp_path / "in.jsonl", 100))  # queued before any worker runs
    with stack.engine.connect() as conn:
        docs = conn.execute(select(Document.id, Document.text).where(Document.job_id == report.job_id)).all()
    for start in range(0, len(docs), BATCH):  # every batch a second time
        chunk = docs[start : start + BATCH]
        send_batch(stack.app, "classify", batch_of(report.job_id, "news", [d.id for d in chunk], [d.text for d in chunk]))
    # Two processes on the services stack, so copies of one batch can run at the same time.
    stack.start_worker(*(["--concurrency=2"] if stack.name == "services" else []))
    stack.wait_finished(report.job_id)

    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 100 and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, report.job_id) == {"done": 100}


def test_a_worker_killed_mid_job_is_replaced_and_no_document_is_lost_or_doubled(stack, tmp_path):
    from producer.sending import requeue

    first = stack.start_worker()
    report = stack.submit(corpus(tmp_path / "in.jsonl", 200), batch_size=5)
    wait_until(lambda: status_counts(stack.engine, report.job_id).get("done", 0) > 0, 60, 0.02, "first batch")
    first.kill()  # SIGKILL: no ack, no clean-up
    assert status_counts(stack.engine, report.job_id).get("pending", 0) > 0, "killed too late to test recovery"

    if stack.name == "services":
        # Redis hands the killed worker's unacked batch to the next worker after the
        # visibility timeout (shortened here); the rest are still queued. No requeue needed.
        stack.start_worker(visibility_timeout_s="1")
    else:
        # The filesystem broker deleted the message the dead worker had taken: requeue
        # re-sends every pending document (duplicates of queued ones are skipped as done).
        stack.start_worker()
        requeue(stack.engine, stack.app, report.job_id, 5)
    stack.wait_finished(report.job_id)

    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 200 and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, report.job_id) == {"done": 200}


def test_a_batch_for_a_model_the_worker_lacks_fails_each_document_with_the_reason(stack):
    from lstmq.queue import send_batch

    texts = ["some text", "more text", "and more"]
    job_id, ids = add_job(stack.engine, texts, model="vanished-model")
    stack.start_worker()
    send_batch(stack.app, "classify", batch_of(job_id, "vanished-model", ids, texts))
    stack.wait_finished(job_id)

    with stack.engine.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert len(errors) == 3 and all("vanished-model" in (e or "") for e in errors)
    assert results_per_document(stack.engine, job_id) == {}
