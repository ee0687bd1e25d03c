"""The cap on batches that keep killing their worker, counted in the test's own Redis db."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from worker.redeliveries import MAX_REDELIVERIES, count_redelivery


def request(task_id: str, redelivered: bool, retries: int = 0) -> SimpleNamespace:
    return SimpleNamespace(id=task_id, retries=retries, delivery_info={"redelivered": redelivered})


def test_a_first_delivery_is_not_counted(redis_url):
    assert count_redelivery(redis_url, request(uuid.uuid4().hex, redelivered=False)) == 0


def test_each_redelivery_of_one_attempt_is_counted_up_to_the_cap(redis_url):
    task_id = uuid.uuid4().hex
    counts = [count_redelivery(redis_url, request(task_id, redelivered=True)) for _ in range(MAX_REDELIVERIES)]
    assert counts == list(range(1, MAX_REDELIVERIES + 1))


def test_a_retry_starts_a_fresh_count(redis_url):
    task_id = uuid.uuid4().hex
    count_redelivery(redis_url, request(task_id, redelivered=True, retries=0))
    assert count_redelivery(redis_url, request(task_id, redelivered=True, retries=1)) == 1


def test_the_filesystem_broker_never_counts():
    assert count_redelivery("filesystem://", request(uuid.uuid4().hex, redelivered=True)) == 0
