"""Health for people: `lstmq status` and `lstmq jobs` say when a job is stalled and whether it is
being recovered; `lstmq workers` lists live workers (a dead one's row ages out)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from lstmq.db.engine import session_scope
from lstmq.db.queries import Health, job_health, job_status
from lstmq.db.schema import Job, WorkerBeat, utcnow
from lstmq.producer.output import describe, stalled_briefly
from tests.support.jobs import add_batch, add_job
from tests.support.processes import run_lstmq

STALL_S = 60


def test_a_job_with_nothing_in_flight_is_waiting_not_stalled(migrated_db):
    job_id, _ = add_job(migrated_db, ["one", "two"])
    with session_scope(migrated_db) as session:
        status = job_status(session, job_id, heartbeat_s=5)
        assert job_health(session, status, STALL_S, now=utcnow() + timedelta(hours=1)) is None
    assert status.waiting == "a worker"  # no live worker takes its queue
    assert "waiting for a worker" in describe(status)


def test_a_higher_priority_job_is_what_a_waiting_job_waits_for(migrated_db):
    low, _ = add_job(migrated_db, ["one"])
    add_job(migrated_db, ["two"])
    with session_scope(migrated_db) as session:
        session.get(Job, low).priority = "low"
    with session_scope(migrated_db) as session:
        assert job_status(session, low).waiting == "1 higher-priority job"


def test_a_job_in_flight_without_progress_reads_stalled_then_recovering(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two"])
    add_batch(migrated_db, job_id, ids)
    with session_scope(migrated_db) as session:
        status = job_status(session, job_id)
        assert job_health(session, status, STALL_S) is None  # just submitted
        health = job_health(session, status, STALL_S, now=utcnow() + timedelta(seconds=STALL_S + 1))
    assert status.in_flight == 1 and status.waiting is None
    assert health is not None and not health.recovering
    assert "stalled since" in describe(status, health) and "waiting for a live worker" in describe(status, health)

    with session_scope(migrated_db) as session:
        session.execute(update(Job).where(Job.id == job_id).values(recovered_at=utcnow(), recoveries=2))
    with session_scope(migrated_db) as session:
        health = job_health(session, status, STALL_S, now=utcnow() + timedelta(seconds=STALL_S + 1))
    assert health.recovering and "recovering (re-sent 2x" in describe(status, health)


def test_workers_lists_live_workers_only(migrated_db):
    beat = {"queues": ["lstmq.classify"], "models": ["news"], "device": "cpu", "started_at": utcnow()}
    with session_scope(migrated_db) as session:
        session.add(
            WorkerBeat(name="live@host", pid=1, current=[{"job_id": "j1", "docs": 8}], beat_at=utcnow(), **beat)
        )
        session.add(WorkerBeat(name="dead@host", pid=2, current=[], beat_at=utcnow() - timedelta(hours=1), **beat))
    out = run_lstmq("workers")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "live@host" in text and "news" in text and "job j1 (8 docs)" in text and "dead@host" not in text


def test_the_jobs_table_says_it_briefly():
    since = utcnow() - timedelta(hours=2, minutes=5)
    waiting = Health(stalled_since=since, recoveries=0, recovered_at=None)
    recovering = Health(stalled_since=since, recoveries=2, recovered_at=since + timedelta(minutes=1))
    now = since + timedelta(hours=2, minutes=5)
    assert stalled_briefly(waiting, now) == "stalled 2h, waiting for a worker"
    assert stalled_briefly(recovering, now) == "stalled 2h, recovering 2x"
    assert stalled_briefly(waiting, since + timedelta(seconds=59)) == "stalled 59s, waiting for a worker"
