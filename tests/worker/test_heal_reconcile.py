"""The reconciler on its own: which batches in flight are lost (unsent, their worker dead, or
gone from the broker), one re-send whichever worker looks, a batch that keeps killing its
workers failed for a person to retry, and a batch waiting for its retry never touched."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest.mock import patch

from sqlalchemy import select
from sqlalchemy.orm import Session

from lstmq.db.engine import session_scope
from lstmq.db.queries import job_status
from lstmq.db.schema import JOB_SUBMITTING, Document, Job, WorkerBeat, utcnow
from lstmq.producer.liveness import beat
from lstmq.sending import RECORDING
from lstmq.settings import get_settings
from lstmq.worker.heal.reconcile import (
    DROPPED,
    KILLED,
    MAX_KILLS,
    UNSENT,
    cancel_abandoned,
    lost_batches,
    reconcile,
)
from tests.support.jobs import add_batch, add_job, batches_of, status_counts
from tests.support.queued import queued_doc_ids, queued_payloads

STALL_S = 60


def live(name: str = "w@test", pid: int = 1, held: tuple[int, ...] = ()) -> WorkerBeat:
    current = [{"job_id": "j", "batch_id": batch_id, "docs": 2} for batch_id in held]
    return WorkerBeat(name=name, pid=pid, queues=["lstmq.classify"], current=current, slots=1)


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def lost(engine, workers, now, in_queue: int = 0) -> dict[int, str]:
    return {item.batch.id: item.why for item in lost_batches(engine, workers, get_settings(), now, lambda q: in_queue)}


def test_a_batch_never_published_is_lost_at_once(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two"])
    unsent = add_batch(migrated_db, job_id, ids, sent_at=None)
    assert lost(migrated_db, [live()], utcnow()) == {unsent: UNSENT}


def test_a_batch_taken_by_a_dead_worker_is_lost_unless_a_live_worker_holds_it(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    started = utcnow() - timedelta(seconds=STALL_S)
    dead = add_batch(
        migrated_db, job_id, ids[:1], state="running", worker="gone@test", worker_pid=9, started_at=started
    )
    alive = add_batch(migrated_db, job_id, ids[1:2], state="running", worker="w@test", worker_pid=1, started_at=started)
    assert lost(migrated_db, [live()], utcnow()) == {dead: KILLED}
    assert alive not in lost(migrated_db, [live()], utcnow())
    # Waiting for its retry on a live worker (another node's name, but it holds it): not lost.
    assert lost(migrated_db, [live(held=(dead,))], utcnow()) == {}


def test_a_queued_batch_is_dropped_only_when_old_and_beyond_what_its_queue_still_holds(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    old = utcnow() - timedelta(seconds=STALL_S + 1)
    oldest = add_batch(migrated_db, job_id, ids[:1], sent_at=old - timedelta(seconds=5))
    older = add_batch(migrated_db, job_id, ids[1:2], sent_at=old)
    add_batch(migrated_db, job_id, ids[2:], sent_at=utcnow())  # recent: on its way
    assert lost(migrated_db, [live()], utcnow(), in_queue=0) == {oldest: DROPPED, older: DROPPED}
    # Two messages in the queue: the two newest batches are still in it (first in, first out).
    assert lost(migrated_db, [live()], utcnow(), in_queue=2) == {oldest: DROPPED}
    assert lost(migrated_db, [live(held=(oldest,))], utcnow(), in_queue=2) == {}  # prefetched by a worker


def test_a_lost_batch_is_sent_again_once_whoever_looks(migrated_db, celery_app, redis_url, caplog):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    add_batch(migrated_db, job_id, ids, state="running", worker="gone@test", worker_pid=9, started_at=later(-STALL_S))
    with caplog.at_level(logging.WARNING, logger="lstmq.worker"):
        for _worker in range(3):  # three workers look at the same moment
            reconcile(migrated_db, celery_app, [live()], get_settings())
    assert sorted(queued_doc_ids(redis_url)) == sorted(ids)
    assert caplog.text.count("lost its worker") == 1
    [batch] = batches_of(migrated_db, job_id)
    assert (batch.state, batch.sends, batch.kills) == ("queued", 2, 1)
    with session_scope(migrated_db) as session:
        assert session.get(Job, job_id).recoveries == 1


def test_a_lost_batch_carries_only_its_documents_still_pending(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    add_batch(migrated_db, job_id, ids, sent_at=None)
    with session_scope(migrated_db) as session:
        session.get(Document, ids[0]).status = "done"
    reconcile(migrated_db, celery_app, [live()], get_settings())
    assert [payload["ids"] for payload in queued_payloads(redis_url)] == [ids[1:]]


def test_a_batch_that_keeps_killing_its_workers_ends_with_its_documents_failed(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    add_batch(
        migrated_db, job_id, ids[:2], state="running", worker="gone@test", worker_pid=9, started_at=later(-STALL_S)
    )
    for death in range(1, MAX_KILLS + 1):
        reconcile(migrated_db, celery_app, [live()], get_settings())
        if death < MAX_KILLS:  # sent again; taken by the next worker, which dies too
            [batch] = batches_of(migrated_db, job_id)
            with session_scope(migrated_db) as session:
                row = session.merge(batch)
                row.state, row.worker, row.worker_pid, row.started_at = "running", f"gone{death}", 9, later(-STALL_S)
    assert status_counts(migrated_db, job_id) == {"failed": 2, "pending": 1}
    assert batches_of(migrated_db, job_id) == []
    with session_scope(migrated_db) as session:
        errors = session.scalars(select(Document.error).where(Document.job_id == job_id, Document.error.is_not(None)))
        assert all(f"lstmq requeue {job_id} --failed" in error for error in errors)


def test_a_lost_batch_of_a_cancelled_job_is_dropped_not_sent(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, ["one"])
    add_batch(migrated_db, job_id, ids, sent_at=None)
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).state = "cancelled"
    reconcile(migrated_db, celery_app, [live()], get_settings())
    assert queued_payloads(redis_url) == [] and batches_of(migrated_db, job_id) == []


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
    reconcile(migrated_db, celery_app, [live()], get_settings(), now=now)
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
