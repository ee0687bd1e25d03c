"""A real `lstmq worker` with LSTMQ_RETAIN prunes old jobs by itself, from its heartbeat, and
keeps recent ones (SQLite + file broker, PostgreSQL + Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from tests.core.test_retention import old_job
from tests.support.stacks import BACKENDS, open_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

HOUSEKEEPING_TIMEOUT_S = 60


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_with_lstmq_retain_prunes_old_jobs_and_keeps_recent_ones(request, backend, tmp_path):
    with open_stack(request, backend, tmp_path / backend) as stack:
        old = old_job(stack.engine, "render", docs=3, age=timedelta(days=40))
        recent = old_job(stack.engine, age=timedelta(days=2))
        stack.start_worker(retain="30d")

        def jobs_left() -> set[str]:
            with session_scope(stack.engine) as session:
                return set(session.scalars(select(Job.id)))

        wait_until(lambda: old not in jobs_left(), HOUSEKEEPING_TIMEOUT_S, lambda: f"job {old} pruned{stack.logs()}")
        assert jobs_left() == {recent}
