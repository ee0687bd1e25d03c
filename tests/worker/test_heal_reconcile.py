"""The reconciler on its own: which jobs are stalled, one re-send per interval whichever worker
looks, and a job whose re-sends never make progress is failed for a person to retry."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest.mock import patch

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from lstmq.db.engine import session_scope
from lstmq.db.queries import job_status
from lstmq.db.schema import JOB_SUBMITTING, Document, Job, WorkerBeat, utcnow
from lstmq.producer.liveness import beat
from lstmq.sending import RECORDING
from lstmq.settings import get_settings
from lstmq.worker.heal.reconcile import MAX_FRUITLESS_RECOVERIES, cancel_abandoned, reconcile, stalled_jobs
from tests.support.jobs import add_job, status_counts
from tests.support.queued import queued_doc_ids, queued_payloads

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


def recording_job(engine, beat_at) -> str:
    """A job its submit is still recording, whose last sign of life was at ``beat_at``."""
    job_id, _ = add_job(engine, ["one", "two"], state=JOB_SUBMITTING)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        job.options, job.created_at, job.progressed_at = {RECORDING: True}, beat_at, beat_at
    return job_id


def test_a_job_whose_submit_died_while_recording_is_cancelled_with_the_reason(migrated_db, celery_app, redis_url):
    now = utcnow()
    dead = recording_job(migrated_db, now - timedelta(seconds=STALL_S + 1))
    alive = recording_job(migrated_db, now - timedelta(seconds=STALL_S - 5))
    reconcile(migrated_db, celery_app, [idle()], get_settings(), now=now)
    with session_scope(migrated_db) as session:
        dead_status, alive_status = job_status(session, dead), job_status(session, alive)
    assert (dead_status.state, alive_status.state) == ("cancelled", "submitting")
    assert dead_status.note.startswith(f"its submit stopped (no sign of life for {STALL_S + 1} s) after recording 2 ")
    assert queued_doc_ids(redis_url) == []  # part of an input is never sent as if it were all of it


def test_a_late_beat_of_a_live_submit_wins_over_the_cancel(migrated_db):
    now = utcnow()
    job_id = recording_job(migrated_db, now - timedelta(seconds=STALL_S + 1))
    real_execute = Session.execute

    def beat_first(session, statement, *args, **kwargs):  # the submit beats just before the cancel
        if getattr(statement, "is_update", False) and not beat_first.done:
            beat_first.done = True
            with session_scope(migrated_db) as other:
                beat(other, job_id)
        return real_execute(session, statement, *args, **kwargs)

    beat_first.done = False
    with patch.object(Session, "execute", beat_first):
        assert cancel_abandoned(migrated_db, STALL_S, now) == []
    assert job_row_state(migrated_db, job_id) == "submitting"


def job_row_state(engine, job_id: str) -> str:
    with session_scope(engine) as session:
        return session.get(Job, job_id).state


def test_a_stalled_job_is_sent_again_in_its_own_batch_size(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).options = {"batch_size": 2}  # submitted with --batch-size 2
    reconcile(migrated_db, celery_app, [idle()], get_settings(), now=later(STALL_S + 1))
    assert [len(payload["docs"]) for payload in queued_payloads(redis_url)] == [2, 1]
