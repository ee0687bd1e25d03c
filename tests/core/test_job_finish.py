"""A job's end is stored: the transaction that gives its last pending document a result makes it
finished (not a later read), a job still being recorded waits for the end of its input,
requeue --failed opens a finished job again, and migration 0009 finishes the jobs already done."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import column, insert, select, table, text

from lstmq.db.engine import get_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.queries import job_status
from lstmq.db.schema import JOB_CANCELLED, JOB_FINISHED, JOB_QUEUED, JOB_SUBMITTING, Job, as_utc, utcnow
from lstmq.db.transitions import cancel_job
from lstmq.sending import mark_recorded, requeue
from lstmq.worker.batches import set_document_status
from tests.core.test_job_counters import TEXTS, run
from tests.support.jobs import add_job


def stored(engine, job_id: str) -> tuple[str, object]:
    """The job's stored state and finished_at, read as a plain SELECT (no status query)."""
    with engine.connect() as conn:
        row = conn.execute(select(Job.state, Job.finished_at).where(Job.id == job_id)).one()
    return row.state, as_utc(row.finished_at)


def finished_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(text("SELECT id FROM jobs WHERE state = 'finished'")))


def test_the_transaction_of_the_last_result_finishes_the_job(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two"])
    with session_scope(migrated_db) as session:
        set_document_status(session, ids[:1], {})
        assert session.scalar(select(Job.state).where(Job.id == job_id)) == JOB_QUEUED
        set_document_status(session, ids[1:], {})
        assert session.scalar(select(Job.state).where(Job.id == job_id)) == JOB_FINISHED


def test_a_finished_job_is_stored_finished_before_anyone_reads_it(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    other, _ = add_job(migrated_db, ["still pending"])
    before = utcnow()
    run(migrated_db, job_id, ids)
    state, finished_at = stored(migrated_db, job_id)
    assert state == JOB_FINISHED and finished_at >= before
    assert finished_ids(migrated_db) == {job_id}
    assert other not in finished_ids(migrated_db)


def test_a_job_still_being_recorded_does_not_finish_until_its_input_ends(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS, state=JOB_SUBMITTING)
    run(migrated_db, job_id, ids)
    assert stored(migrated_db, job_id) == (JOB_SUBMITTING, None)
    mark_recorded(migrated_db, job_id)
    state, finished_at = stored(migrated_db, job_id)
    assert state == JOB_FINISHED and finished_at is not None


def test_the_end_of_recording_leaves_a_job_with_pending_documents_queued(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS, state=JOB_SUBMITTING)
    run(migrated_db, job_id, ids[:2])
    mark_recorded(migrated_db, job_id)
    assert stored(migrated_db, job_id) == (JOB_QUEUED, None)


def test_requeue_failed_opens_a_finished_job_and_its_last_result_finishes_it_again(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids)
    assert stored(migrated_db, job_id)[0] == JOB_FINISHED
    requeue(migrated_db, job_id, failed=True)
    assert stored(migrated_db, job_id) == (JOB_QUEUED, None)
    run(migrated_db, job_id, ids, fail_on=None)
    assert stored(migrated_db, job_id)[0] == JOB_FINISHED


def test_cancel_leaves_a_finished_job_finished(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids)
    with session_scope(migrated_db) as session:
        assert cancel_job(session, job_id).state == JOB_FINISHED
    assert stored(migrated_db, job_id)[0] == JOB_FINISHED


def test_a_cancelled_job_stays_cancelled_when_its_last_documents_get_results(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two"])
    with session_scope(migrated_db) as session:
        cancel_job(session, job_id)
    with session_scope(migrated_db) as session:  # a batch that was already running
        set_document_status(session, ids, {})
    assert stored(migrated_db, job_id) == (JOB_CANCELLED, None)


def test_reading_a_finished_job_shows_the_stored_state_and_time(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids)
    _, finished_at = stored(migrated_db, job_id)
    with session_scope(migrated_db) as session:
        status = job_status(session, job_id)
    assert (status.state, status.finished_at, status.eta_s) == (JOB_FINISHED, finished_at, 0.0)


def test_migration_0009_finishes_the_queued_jobs_with_nothing_pending(db_url, lstmq_env):
    lstmq_env(database_url=db_url)
    engine = get_engine()
    upgrade(engine, "0008")
    at = utcnow() - timedelta(hours=1)
    done = _job_at_0008(engine, "queued", total=3, done=2, failed=1, progressed_at=at)
    submitted_only = _job_at_0008(engine, "queued", total=0, submitted_at=at + timedelta(minutes=1))
    pending = _job_at_0008(engine, "queued", total=3, done=2, progressed_at=at)
    cancelled = _job_at_0008(engine, "cancelled", total=1, done=1, progressed_at=at)
    upgrade(engine)
    assert stored(engine, done) == (JOB_FINISHED, at)
    assert stored(engine, submitted_only) == (JOB_FINISHED, at + timedelta(minutes=1))
    assert stored(engine, pending) == (JOB_QUEUED, None)
    assert stored(engine, cancelled) == (JOB_CANCELLED, None)
    assert finished_ids(engine) == {done, submitted_only}


def _job_at_0008(engine, state: str, total: int, done: int = 0, failed: int = 0, **moments) -> str:
    """A job row as schema 0008 stored it (finished derived, so stored as queued): only the
    columns given, typed as the model types them (later migrations add columns 0008 lacks)."""
    job_id = uuid.uuid4().hex
    row = {"id": job_id, "task": "classify", "model": "news", "state": state, "total": total}
    counts = {
        "done_count": done,
        "failed_count": failed,
        "rejected": 0,
        "created_at": utcnow(),
        "sources": [],
        "options": {},
    }
    values = row | counts | moments
    jobs = table("jobs", *(column(name, Job.__table__.c[name].type) for name in values))
    with session_scope(engine) as session:
        session.execute(insert(jobs).values(**values))
    return job_id
