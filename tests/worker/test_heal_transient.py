"""Transient means retry until the service is back: a batch is never dropped after a fixed
number of quick retries, and the wait between attempts is capped below the visibility timeout."""

from __future__ import annotations

import lstmq.worker.tasks
from lstmq.errors import ServiceUnavailable
from lstmq.settings import DEFAULT_VISIBILITY_TIMEOUT_S
from lstmq.worker.tasks import RETRY_BACKOFF_MAX_S, classify
from tests.support.jobs import add_job, batch_of

OUTAGE_ATTEMPTS = 12  # more than any fixed cap a quick-retry policy would have


def flaky(outage_attempts: int):
    """A batch function whose service is down for the first ``outage_attempts`` calls."""
    calls = []

    def run(batch, engine, device, state):
        calls.append(batch.job_id)
        if len(calls) <= outage_attempts:
            raise ServiceUnavailable("database error: connection refused")
        return {"done": len(batch.docs), "failed": 0, "skipped": 0}

    return run, calls


def test_a_long_outage_is_retried_until_the_service_is_back(migrated_db, monkeypatch):
    run, calls = flaky(OUTAGE_ATTEMPTS)
    monkeypatch.setattr(lstmq.worker.tasks, "batch_function", lambda kind: run)
    job_id, ids = add_job(migrated_db, ["a text"])
    # apply() runs in this process, and so does each retry (at once: no countdown when eager).
    classify.apply(args=[batch_of(job_id, "news", ids, ["a text"]).model_dump(mode="json")])
    assert len(calls) == OUTAGE_ATTEMPTS + 1


def test_the_wait_between_attempts_is_capped_below_the_visibility_timeout():
    assert classify.retry_backoff_max == RETRY_BACKOFF_MAX_S <= 60 < DEFAULT_VISIBILITY_TIMEOUT_S
    assert classify.max_retries is None
