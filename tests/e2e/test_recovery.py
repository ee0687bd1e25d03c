"""Failures mid-job: a worker killed with SIGKILL while its batch is unacknowledged is replaced,
and the batch comes back, by Redis redelivery or by `lstmq requeue`, with exactly one result per
document; a database outage is retried; a batch that keeps killing its worker is given up after
a bounded number of tries. Each kill waits for an event proving the batch is in flight."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from lstmq.db.schema import Document
from lstmq.queue import send_batch
from lstmq.sending import requeue
from lstmq.worker.heal.redeliveries import MAX_REDELIVERIES
from tests.support.inputs import corpus
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts
from tests.support.locks import documents_locked, lock_waiters
from tests.support.postgres import set_connections
from tests.support.stacks import BACKENDS, open_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

DOCS = 10  # two batches of 5
RECEIVED = re.compile(r"Task lstmq\.classify\[([0-9a-f-]+)\] received")


@pytest.fixture(params=BACKENDS)
def stack(request, tmp_path):
    with open_stack(request, request.param, tmp_path / "home") as stack:
        yield stack


@pytest.fixture
def services_stack(request, tmp_path):
    with open_stack(request, "services", tmp_path / "home") as stack:
        yield stack


def kill_worker_holding_a_batch(stack, path: Path) -> tuple[str, str]:
    """Start a worker, hold it, submit (its batches go to the broker: the worker is live), then
    SIGKILL it once it has taken a batch it cannot finish (the documents table is held, so its
    write and hence its late ack wait). Returns (job id, task id)."""
    first = stack.start_worker()
    first.pause()
    report = stack.submit(corpus(path, DOCS), batch_size=5)
    with documents_locked(stack.engine):
        first.resume()
        first.wait_for_log("] received", 60)
        first.kill()  # SIGKILL: no ack, no clean-up
    assert status_counts(stack.engine, report.job_id) == {"pending": DOCS}
    return report.job_id, RECEIVED.search(first.log()).group(1)


def assert_one_result_per_document(stack, job_id: str) -> None:
    per_doc = results_per_document(stack.engine, job_id)
    assert len(per_doc) == DOCS and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, job_id) == {"done": DOCS}


def test_redis_redelivers_a_killed_workers_batch_to_the_next_worker_without_requeue(services_stack, tmp_path):
    stack = services_stack
    job_id, task_id = kill_worker_holding_a_batch(stack, tmp_path / "in.jsonl")
    # The visibility timeout (shortened here) is on the restoring side: the next worker's sweep.
    second = stack.start_worker(visibility_timeout_s="1")
    stack.wait_finished(job_id)
    assert f"[{task_id}] received" in second.log(), "the dead worker's message was not redelivered"
    assert_one_result_per_document(stack, job_id)


def test_requeue_finishes_a_job_whose_worker_was_killed_with_its_batch_unacknowledged(stack, tmp_path):
    """The filesystem broker deleted the message when the dead worker read it; Redis would
    redeliver it only after the visibility timeout (4 h by default): requeue re-sends every
    pending document now (copies of still-queued ones are skipped as done)."""
    job_id, _ = kill_worker_holding_a_batch(stack, tmp_path / "in.jsonl")
    stack.start_worker()
    requeue(stack.engine, job_id)
    stack.wait_finished(job_id)
    assert_one_result_per_document(stack, job_id)


def test_a_short_database_outage_is_retried_and_loses_nothing(services_stack, pg_url, tmp_path):
    stack = services_stack
    worker = stack.start_worker()
    worker.pause()  # hold the worker while the batches are queued and the database goes away
    report = stack.submit(corpus(tmp_path / "in.jsonl", 60))
    set_connections(pg_url, allowed=False)
    try:
        worker.resume()
        wait_until(lambda: "waits for its retry" in worker.log(), 30, what="a retry")
    finally:
        set_connections(pg_url, allowed=True)
    stack.engine.dispose()  # the test's own pooled connections were cut too
    stack.wait_finished(report.job_id)

    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 60 and set(per_doc.values()) == {1}


def child_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (prefork pool children), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return pids


def test_a_batch_that_keeps_killing_its_worker_is_given_up_and_its_documents_failed(services_stack):
    stack = services_stack
    worker = stack.start_worker("--concurrency=2", "--pool=prefork")  # the parent survives its children
    texts = [f"a poisonous document {i}" for i in range(8)]
    job_id, ids = add_job(stack.engine, texts, dispatched=True)
    send_batch(stack.app, "classify", batch_of(job_id, "news", ids))

    in_task: set[int] = set()  # database sessions of children caught inside the task
    with documents_locked(stack.engine):  # each delivery stops at its write
        for delivery in range(1, MAX_REDELIVERIES + 1):  # crash every delivery the cap allows
            worker.wait_for_log("] received", 60, count=delivery)
            in_task.update(wait_until(lambda: lock_waiters(stack.engine) - in_task, 60, f"delivery {delivery}"))
            for pid in child_pids(worker.proc.pid):
                os.kill(pid, signal.SIGKILL)
    stack.wait_finished(job_id)

    with stack.engine.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert status_counts(stack.engine, job_id) == {"failed": 8}
    assert all(error.startswith("batch given up: its worker died") for error in errors)
