"""The cap on batches that keep killing their worker, counted in the test's own Redis db: only a
batch whose run never ended (its running marker is still there) is counted, and a redelivered
batch runs alone in its process. A worker's death is simulated by a ``start_run`` with no
``end_run``."""

from __future__ import annotations

import logging
import threading
import uuid
from types import SimpleNamespace

import pytest
import redis

import lstmq.worker.heal.redeliveries
from lstmq.errors import ServiceUnavailable
from lstmq.worker.heal.exclusive import SharedExclusiveLock
from lstmq.worker.heal.redeliveries import MAX_REDELIVERIES, end_run, marker_key, running, start_run

WAIT_S = 10  # bound on each event wait: a broken lock fails the test instead of hanging it
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def request(task_id: str, redelivered: bool, retries: int = 0) -> SimpleNamespace:
    return SimpleNamespace(id=task_id, retries=retries, delivery_info={"redelivered": redelivered})


def crash_while_running(url: str, req: SimpleNamespace) -> None:
    start_run(url, req)  # the worker dies: end_run never comes


@pytest.fixture
def client(redis_url):
    return redis.Redis.from_url(redis_url)


def test_a_first_delivery_is_not_counted(redis_url):
    assert start_run(redis_url, request(uuid.uuid4().hex, redelivered=False)) == 0


def test_each_redelivery_after_a_death_while_running_is_counted_up_to_the_cap(redis_url):
    task_id = uuid.uuid4().hex
    crash_while_running(redis_url, request(task_id, redelivered=False))
    counts = [start_run(redis_url, request(task_id, redelivered=True)) for _ in range(MAX_REDELIVERIES)]
    assert counts == list(range(1, MAX_REDELIVERIES + 1))


def test_a_redelivery_whose_last_run_ended_is_not_counted(redis_url):
    """A batch that sat in a dead worker's prefetch, or waited for a redelivered one to run."""
    task_id = uuid.uuid4().hex
    assert start_run(redis_url, request(task_id, redelivered=True)) == 0  # no marker: never ran
    end_run(redis_url, request(task_id, redelivered=True))
    assert start_run(redis_url, request(task_id, redelivered=True)) == 0


def test_a_retry_starts_a_fresh_count(redis_url):
    task_id = uuid.uuid4().hex
    crash_while_running(redis_url, request(task_id, redelivered=False, retries=0))
    crash_while_running(redis_url, request(task_id, redelivered=True, retries=0))
    crash_while_running(redis_url, request(task_id, redelivered=False, retries=1))
    assert start_run(redis_url, request(task_id, redelivered=True, retries=1)) == 1


def test_the_filesystem_broker_never_marks_nor_counts():
    req = request(uuid.uuid4().hex, redelivered=True)
    crash_while_running("filesystem://", req)
    with running("filesystem://", req) as count:
        assert count == 0


def test_the_marker_lives_exactly_as_long_as_the_run(redis_url, client):
    req = request(uuid.uuid4().hex, redelivered=False)
    with running(redis_url, req):
        assert client.exists(marker_key(req))
    assert not client.exists(marker_key(req))


def test_the_marker_is_deleted_when_the_batch_fails(redis_url, client):
    req = request(uuid.uuid4().hex, redelivered=True)
    with pytest.raises(RuntimeError, match="model exploded"), running(redis_url, req):
        assert client.exists(marker_key(req))
        raise RuntimeError("model exploded")
    assert not client.exists(marker_key(req))
    assert start_run(redis_url, req) == 0  # a failure handled by Celery is no worker death


def test_an_outage_when_marking_raises_service_unavailable_and_frees_the_turn():
    lock = SharedExclusiveLock()
    with pytest.raises(ServiceUnavailable, match="marking a batch running"):
        with running(UNREACHABLE, request(uuid.uuid4().hex, redelivered=True), lock=lock):
            pytest.fail("the batch ran without its marker")
    with lock.exclusive():  # released: a later batch is not stuck behind the failed one
        pass


def test_an_outage_when_clearing_the_marker_is_logged_and_the_batch_stands(redis_url, monkeypatch, caplog):
    down = redis.Redis.from_url(UNREACHABLE)
    monkeypatch.setattr(lstmq.worker.heal.redeliveries, "_redis", lambda url: down)
    with caplog.at_level(logging.WARNING, logger="lstmq.worker"):
        end_run(redis_url, request(uuid.uuid4().hex, redelivered=False))
    assert "running marker not cleared" in caplog.text


class SeenWaiting(threading.Condition):
    """A condition that tells the test when a thread has come to wait on it, by thread name."""

    def __init__(self, *names: str):
        super().__init__()
        self.waiting = {name: threading.Event() for name in names}

    def wait_for(self, predicate, timeout=None):
        name = threading.current_thread().name
        if name in self.waiting:
            self.waiting[name].set()
        return super().wait_for(predicate, timeout)


class Holder:
    """A thread that takes ``hold()`` (its value: ``value``) and keeps it until ``release`` is set;
    ``order`` records when it got in and left."""

    def __init__(self, name: str, hold, order: list[str]):
        self.inside, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(hold, order), name=name, daemon=True)
        self.thread.start()

    def _run(self, hold, order: list[str]) -> None:
        with hold() as self.value:
            order.append(f"{self.thread.name} in")
            self.inside.set()
            assert self.release.wait(WAIT_S)
            order.append(f"{self.thread.name} out")

    def finish(self) -> None:
        self.release.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def test_an_exclusive_holder_waits_for_shared_ones_and_goes_before_later_shared_ones():
    cond = SeenWaiting("exclusive", "late shared")
    lock, order = SharedExclusiveLock(cond), []
    early = Holder("early shared", lock.shared, order)
    assert early.inside.wait(WAIT_S)
    exclusive = Holder("exclusive", lock.exclusive, order)
    assert cond.waiting["exclusive"].wait(WAIT_S)
    late = Holder("late shared", lock.shared, order)
    assert cond.waiting["late shared"].wait(WAIT_S)

    early.finish()
    assert exclusive.inside.wait(WAIT_S)
    assert not late.inside.is_set()
    exclusive.finish()
    assert late.inside.wait(WAIT_S)
    late.finish()
    assert order == [
        "early shared in",
        "early shared out",
        "exclusive in",
        "exclusive out",
        "late shared in",
        "late shared out",
    ]


def test_a_redelivered_batch_is_counted_and_marked_only_once_the_batches_beside_it_have_ended(redis_url, client):
    """So a crash while it waits (a batch beside it killed the worker) is not charged to it."""
    cond = SeenWaiting("redelivered")
    lock, order = SharedExclusiveLock(cond), []
    beside = request(uuid.uuid4().hex, redelivered=False)
    back = request(uuid.uuid4().hex, redelivered=True)
    first = Holder("beside", lambda: running(redis_url, beside, lock=lock), order)
    assert first.inside.wait(WAIT_S)
    second = Holder("redelivered", lambda: running(redis_url, back, lock=lock), order)
    assert cond.waiting["redelivered"].wait(WAIT_S)
    assert client.exists(marker_key(beside)) and not client.exists(marker_key(back))

    first.finish()
    assert second.inside.wait(WAIT_S)
    assert not client.exists(marker_key(beside)) and client.exists(marker_key(back))
    second.finish()
    assert second.value == 0  # it never ran before: no marker, no count
    assert order == ["beside in", "beside out", "redelivered in", "redelivered out"]
