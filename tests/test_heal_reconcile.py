"""The reconciler on its own: which jobs are stalled, one re-send per interval whichever worker
looks, and a job whose re-sends never make progress is failed for a person to retry."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document, Job, WorkerBeat, utcnow
from lstmq.settings import get_settings
from tests.support.jobs import add_job, status_counts
from tests.support.queued import queued_doc_ids
from worker.reconcile import MAX_FRUITLESS_RECOVERIES, reconcile, stalled_jobs

STALL_S = 60


def idle(queue: str = "lstmq.classify") -> WorkerBeat:
    return WorkerBeat(name="idle@test", queues=[queue], current=[])


def busy(job_id: str) -> WorkerBeat:
    return WorkerBeat(name="busy@test", queues=["lstmq.classify"], current=[{"job_id": job_id, "docs": 2}])


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def test_a_job_is_stalled_only_without_progress_and_with_nothing_on_its_way(migrated_db):
    job_id, _ = add_job(migrated_db, ["one", "two"])

    def stalled(workers, now, queue_empty=True):
        return [s.job.id for s in stalled_jobs(migrated_db, workers, STALL_S, now, lambda queue: queue_empty)]

    assert stalled([idle()], later(STALL_S + 1)) == [job_id]
    assert stalled([busy("another job")], later(STALL_S + 1)) == [job_id]  # its messages are gone
    assert stalled([idle()], later(STALL_S - 5)) == []  # not long enough
    assert stalled([idle(), busy(job_id)], later(STALL_S + 1)) == []  # a live worker holds a batch
    assert stalled([busy("another job")], later(STALL_S + 1), queue_empty=False) == []  # waiting its turn
    assert stalled([idle("lstmq.render")], later(STALL_S + 1)) == []  # nobody consumes its queue
    assert stalled([], later(STALL_S + 1)) == []


def test_a_stalled_job_is_sent_again_once_per_interval_whoever_looks(migrated_db, celery_app, redis_url, caplog):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    settings = get_settings()
    with caplog.at_level(logging.WARNING, logger="lstmq.worker"):
        for _worker in range(3):  # three workers look at the same moment
            reconcile(migrated_db, celery_app, [idle()], settings, now=later(STALL_S + 1))
    assert sorted(queued_doc_ids(redis_url)) == sorted(ids)
    assert caplog.text.count(f"job {job_id} stalled") == 1
    with session_scope(migrated_db) as session:
        assert session.get(Job, job_id).recoveries == 1
    reconcile(migrated_db, celery_app, [idle()], settings, now=later(2 * STALL_S + 2))
    assert len(queued_doc_ids(redis_url)) == len(ids)  # still queued: not re-sent again
    redis.Redis.from_url(redis_url).delete("lstmq.classify")  # and lost again
    reconcile(migrated_db, celery_app, [idle()], settings, now=later(STALL_S + 10))  # within the interval
    assert queued_doc_ids(redis_url) == []
    reconcile(migrated_db, celery_app, [idle()], settings, now=later(2 * STALL_S + 2))  # the next one
    assert sorted(queued_doc_ids(redis_url)) == sorted(ids)


def test_re_sends_that_never_make_progress_end_with_the_documents_failed(migrated_db, celery_app, redis_url):
    job_id, _ = add_job(migrated_db, ["one", "two"])
    for n in range(1, MAX_FRUITLESS_RECOVERIES + 2):
        reconcile(migrated_db, celery_app, [idle()], get_settings(), now=later(n * (STALL_S + 1)))
        redis.Redis.from_url(redis_url).delete("lstmq.classify")  # taken, and its worker died
    assert status_counts(migrated_db, job_id) == {"failed": 2}
    with session_scope(migrated_db) as session:
        errors = session.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert all(f"lstmq requeue {job_id} --failed" in error for error in errors)
