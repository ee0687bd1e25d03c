"""Transient means retry until the service is back: a batch is never dropped after a fixed
number of quick retries, the wait between attempts is capped, and a batch waiting for its retry
stays in flight on its live worker (never sent again beside itself)."""

from __future__ import annotations

import pytest

import lstmq.worker.tasks
from lstmq.db.schema import Classification, utcnow
from lstmq.errors import ServiceUnavailable
from lstmq.settings import DEFAULT_VISIBILITY_TIMEOUT_S, get_settings
from lstmq.worker.batches import Outcome, Results, write_outcome
from lstmq.worker.heal.reconcile import UNSENT, lost_batches
from lstmq.worker.tasks import RETRY_BACKOFF_MAX_S, backoff_s, classify
from tests.support.jobs import add_batch, add_job, batch_of, batches_of

OUTAGE_ATTEMPTS = 12  # more than any fixed cap a quick-retry policy would have


def flaky(outage_attempts: int, during=lambda: None):
    """A batch function whose service is down for the first ``outage_attempts`` calls."""
    calls = []

    def run(batch, engine, device, state):
        calls.append(batch.job_id)
        if len(calls) <= outage_attempts:
            during()
            raise ServiceUnavailable("database error: connection refused")
        write_outcome(engine, Outcome(), Results(Classification, ()), batch.job_id, batch.batch_id)  # as one does
        return {"done": len(batch.ids), "failed": 0, "skipped": 0}

    return run, calls


@pytest.fixture
def waits(monkeypatch):
    """The waits between attempts, taken at once (the worker is not stopping)."""
    seen = []
    monkeypatch.setattr(lstmq.worker.tasks, "pause", lambda seconds: seen.append(seconds) or False)
    return seen


def payload(job_id, ids, batch_id=None) -> dict:
    batch = batch_of(job_id, "news", ids, ["a text"] * len(ids))
    return batch.model_copy(update={"batch_id": batch_id}).model_dump(mode="json")


def test_a_long_outage_is_retried_until_the_service_is_back(migrated_db, monkeypatch, waits):
    run, calls = flaky(OUTAGE_ATTEMPTS)
    monkeypatch.setattr(lstmq.worker.tasks, "batch_function", lambda kind: run)
    job_id, ids = add_job(migrated_db, ["a text"])
    classify.apply(args=[payload(job_id, ids)])
    assert len(calls) == OUTAGE_ATTEMPTS + 1 and len(waits) == OUTAGE_ATTEMPTS


def test_a_batch_waiting_for_its_retry_stays_taken_and_is_never_lost(migrated_db, monkeypatch, waits):
    job_id, ids = add_job(migrated_db, ["a text"])
    batch_id = add_batch(migrated_db, job_id, ids)
    seen = []

    def look():  # what the reconciler sees while the batch waits for its retry
        [row] = batches_of(migrated_db, job_id)
        seen.append((row.state, row.receipts))
        assert lost_batches(migrated_db, [], get_settings(), utcnow(), lambda queue: 0) == []

    run, _calls = flaky(3, during=look)
    monkeypatch.setattr(lstmq.worker.tasks, "batch_function", lambda kind: run)
    classify.apply(args=[payload(job_id, ids, batch_id)])
    assert seen == [("running", 1)] * 3  # taken once, however many attempts
    assert batches_of(migrated_db, job_id) == []  # finished: its slot is free


def test_a_worker_stopping_hands_a_waiting_batch_back_for_a_re_send(migrated_db, monkeypatch):
    job_id, ids = add_job(migrated_db, ["a text"])
    batch_id = add_batch(migrated_db, job_id, ids)
    run, _calls = flaky(1)
    monkeypatch.setattr(lstmq.worker.tasks, "batch_function", lambda kind: run)
    monkeypatch.setattr(lstmq.worker.tasks, "pause", lambda seconds: True)  # stopping meanwhile
    result = classify.apply(args=[payload(job_id, ids, batch_id)])
    assert isinstance(result.result, ServiceUnavailable)
    [row] = batches_of(migrated_db, job_id)
    assert (row.state, row.worker, row.sent_at) == ("queued", None, None)
    lost = lost_batches(migrated_db, [], get_settings(), utcnow(), lambda queue: 0)
    assert [(item.batch.id, item.why) for item in lost] == [(batch_id, UNSENT)]  # sent again at once, no death


def test_the_wait_between_attempts_doubles_up_to_a_cap_below_the_visibility_timeout():
    assert RETRY_BACKOFF_MAX_S < DEFAULT_VISIBILITY_TIMEOUT_S
    assert [round(backoff_s(n) * 2) >= 2 ** (n - 1) for n in range(1, 6)] == [True] * 5  # jitter takes at most half
    assert max(backoff_s(n) for n in range(1, 40)) <= RETRY_BACKOFF_MAX_S
