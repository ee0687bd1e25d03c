"""Dispatch across real worker processes (SQLite + the file broker, and PostgreSQL + Redis): the
dispatcher's leader SIGKILLed in the middle of a job is replaced by another worker, and the job
ends with exactly one result per document."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Lease
from lstmq.dispatch.lease import DISPATCHER
from tests.support.inputs import corpus
from tests.support.jobs import results_per_document, status_counts
from tests.support.stacks import BACKENDS, open_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

DOCS = 400
STALL_S = "4"  # beats every second, a lease of 3 s: a takeover in test time


@pytest.fixture(params=BACKENDS)
def stack(request, tmp_path):
    with open_stack(request, request.param, tmp_path / "home") as stack:
        yield stack


def leader(engine) -> str | None:
    with session_scope(engine) as session:
        return session.scalar(select(Lease.holder).where(Lease.name == DISPATCHER))


def test_the_leader_killed_mid_job_is_replaced_and_nothing_is_lost_or_doubled(stack, tmp_path):
    workers = [stack.start_worker(stall_after_s=STALL_S) for _ in range(2)]
    wait_until(lambda: leader(stack.engine) is not None, 30, "a dispatcher leader")
    report = stack.submit(corpus(tmp_path / "in.jsonl", DOCS), batch_size=10)
    first = leader(stack.engine)
    [killed] = [w for w in workers if first.endswith(f":{w.proc.pid}")]
    wait_until(lambda: status_counts(stack.engine, report.job_id).get("done", 0) >= 20, 60, "first results")
    killed.kill()
    stack.wait_finished(report.job_id)
    assert leader(stack.engine) != first
    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == DOCS and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, report.job_id) == {"done": DOCS}
