"""Dispatch against a real database (SQLite and PostgreSQL) and Redis: the broker holds only
what the workers can take, in priority order; a cancelled job gets nothing more; concurrent
dispatchers send every document exactly once; one leader at a time, taken over when it dies."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import delete

from lstmq.db.engine import session_scope
from lstmq.db.schema import Batch, Job, utcnow
from lstmq.db.transitions import cancel_job
from lstmq.dispatch import lease, send
from lstmq.dispatch.order import FairShare
from lstmq.dispatch.send import PREFETCH_MARGIN, dispatch_round
from lstmq.sending import requeue
from tests.support.dispatch import send_all
from tests.support.jobs import add_job, batches_of
from tests.support.queued import queued_doc_ids, queued_payloads
from tests.support.threads import run_together


def workers(slots: int = 1, n: int = 1) -> list:
    return [SimpleNamespace(queues=["lstmq.classify"], slots=slots) for _ in range(n)]


def job_with(engine, n_docs: int, batch_size: int = 2, priority: str = "normal", owner: str = "ann") -> tuple:
    job_id, ids = add_job(engine, [f"text {i}" for i in range(n_docs)])
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        job.options, job.priority, job.owner = {"batch_size": batch_size}, priority, owner
    return job_id, ids


def finish_all(engine) -> None:
    """As workers would: every batch in flight is done."""
    with session_scope(engine) as session:
        session.execute(delete(Batch))


def test_the_broker_holds_only_what_the_workers_can_take(migrated_db, celery_app, redis_url):
    job_with(migrated_db, 100)
    room = 2 * (2 + PREFETCH_MARGIN)  # two workers of two slots each
    assert dispatch_round(migrated_db, celery_app, workers(slots=2, n=2), FairShare()).batches == room
    assert len(queued_payloads(redis_url)) == room
    assert dispatch_round(migrated_db, celery_app, workers(slots=2, n=2), FairShare()).batches == 0  # full
    finish_all(migrated_db)
    assert dispatch_round(migrated_db, celery_app, workers(slots=2, n=2), FairShare()).batches == room


def test_a_batch_holds_at_most_max_batch_bytes_of_text(migrated_db, celery_app, redis_url, monkeypatch):
    """What a worker reads for one batch is bounded by the texts' recorded sizes (in UTF-8: "é"
    is 2 bytes), not by their number alone."""
    monkeypatch.setattr(send, "MAX_BATCH_BYTES", 100)
    job_id, ids = add_job(migrated_db, ["é" * 20] * 5)  # 40 bytes each
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).options = {"batch_size": 4}
    send_all(migrated_db, celery_app)
    assert [payload["ids"] for payload in queued_payloads(redis_url)] == [ids[0:2], ids[2:4], ids[4:5]]


def test_no_worker_means_nothing_is_sent(migrated_db, celery_app, redis_url):
    job_with(migrated_db, 10)
    assert dispatch_round(migrated_db, celery_app, [], FairShare()).batches == 0
    assert queued_payloads(redis_url) == []


def test_a_high_priority_job_goes_before_a_normal_backlog(migrated_db, celery_app, redis_url):
    backlog, _ = job_with(migrated_db, 100)
    urgent, _ = job_with(migrated_db, 4, priority="high")
    dispatch_round(migrated_db, celery_app, workers(slots=1), FairShare())  # room for two batches
    assert [payload["job_id"] for payload in queued_payloads(redis_url)] == [urgent, urgent]
    finish_all(migrated_db)
    dispatch_round(migrated_db, celery_app, workers(slots=1), FairShare())
    assert [payload["job_id"] for payload in queued_payloads(redis_url)][2:] == [backlog, backlog]


def test_a_small_job_is_sent_at_its_owners_next_turn(migrated_db, celery_app, redis_url):
    fair = FairShare()
    big, _ = job_with(migrated_db, 200)
    dispatch_round(migrated_db, celery_app, workers(slots=1), fair)
    small, _ = job_with(migrated_db, 2)
    finish_all(migrated_db)
    dispatch_round(migrated_db, celery_app, workers(slots=1), fair)
    assert [payload["job_id"] for payload in queued_payloads(redis_url)][2:] == [small, big]


def test_a_cancelled_job_gets_nothing_more(migrated_db, celery_app, redis_url):
    job_id, _ = job_with(migrated_db, 10)
    with session_scope(migrated_db) as session:
        cancel_job(session, job_id)
    assert send_all(migrated_db, celery_app) == 0
    assert queued_payloads(redis_url) == []


def test_concurrent_dispatchers_send_every_document_exactly_once(migrated_db, celery_app, redis_url):
    jobs = [job_with(migrated_db, 60, batch_size=3) for _ in range(3)]
    run_together(lambda _n: [send_all(migrated_db, celery_app) for _ in range(3)], range(4))
    sent = Counter(queued_doc_ids(redis_url))
    assert sorted(sent) == sorted(doc_id for _job, ids in jobs for doc_id in ids)
    assert set(sent.values()) == {1}
    ranges = sorted((b.first_id, b.last_id) for job_id, _ in jobs for b in batches_of(migrated_db, job_id))
    assert all(prev[1] < nxt[0] for prev, nxt in zip(ranges, ranges[1:], strict=False))  # no overlap


def test_requeue_offers_the_pending_documents_to_the_dispatcher_again(migrated_db, celery_app, redis_url):
    job_id, ids = job_with(migrated_db, 4)
    send_all(migrated_db, celery_app)
    assert send_all(migrated_db, celery_app) == 0  # everything sent once
    assert requeue(migrated_db, job_id) == 4
    send_all(migrated_db, celery_app)
    assert Counter(queued_doc_ids(redis_url)) == Counter({doc_id: 2 for doc_id in ids})


def test_one_leader_at_a_time_and_another_takes_over_when_its_lease_runs_out(migrated_db):
    now = utcnow()
    assert lease.hold(migrated_db, lease.DISPATCHER, "a", 10, now)
    assert not lease.hold(migrated_db, lease.DISPATCHER, "b", 10, now + timedelta(seconds=5))
    assert lease.hold(migrated_db, lease.DISPATCHER, "a", 10, now + timedelta(seconds=5))  # renewed
    assert not lease.hold(migrated_db, lease.DISPATCHER, "b", 10, now + timedelta(seconds=14))
    assert lease.hold(migrated_db, lease.DISPATCHER, "b", 10, now + timedelta(seconds=16))  # a died
    assert not lease.hold(migrated_db, lease.DISPATCHER, "a", 10, now + timedelta(seconds=17))


def test_a_released_lease_is_taken_at_once(migrated_db):
    assert lease.hold(migrated_db, lease.DISPATCHER, "a", 60)
    lease.release(migrated_db, lease.DISPATCHER, "a")
    assert lease.hold(migrated_db, lease.DISPATCHER, "b", 60)


def test_two_workers_racing_for_a_new_lease_get_one_leader(migrated_db):
    held = run_together(lambda n: lease.hold(migrated_db, lease.DISPATCHER, f"w{n}", 60), range(4))
    assert sorted(held) == [False, False, False, True]
