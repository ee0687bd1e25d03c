"""A job's counters (done, failed; pending = total - done - failed) equal a real count of its
documents after every way a status changes: runs, redeliveries, concurrent copies of a batch,
requeue --failed, give-ups, cancels; and the migration that adds them counts what was there."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from alembic import command
from sqlalchemy import func, select, text

from lstmq.db.engine import get_engine, session_scope
from lstmq.db.migrate import alembic_config, upgrade
from lstmq.db.queries import JOB_FINISHED, job_status, list_jobs
from lstmq.db.schema import Classification, Document, Job, as_utc, utcnow
from lstmq.db.transitions import cancel_job
from lstmq.sending import requeue
from lstmq.worker.batches import (
    Outcome,
    Results,
    VersionInfo,
    give_up,
    process_batch,
    set_document_status,
    write_outcome,
)
from lstmq.worker.heal import reconcile
from tests.support.jobs import add_batch, add_job, batch_of, batches_of, status_counts

RESULTS = Results(Classification, ("label", "score", "probs", "flags"))
TEXTS = ["one", "two", "boom three", "four", "five"]
STATUSES = ("done", "failed", "pending")


def classified(docs, fail_on: str | None = "boom") -> Outcome:
    """A stand-in model: a result for each document, a failure for texts containing ``fail_on``."""
    outcome = Outcome(version=VersionInfo("v1", "news", "classifier", ["a"], {}))
    for doc in docs:
        if fail_on and fail_on in doc.text:
            outcome.failed[doc.id] = f"cannot classify {fail_on}"
        else:
            row = {"label": "a", "score": 1.0, "probs": {"a": 1.0}, "flags": []}
            outcome.rows.append({"document_id": doc.id, "model": "news", "model_version": "v1", **row})
    return outcome


def run(engine, job_id, ids, fail_on: str | None = "boom") -> dict:
    return process_batch(engine, batch_of(job_id, "news", ids), RESULTS, lambda d: classified(d, fail_on))


def docs_of(ids, texts) -> list[SimpleNamespace]:
    """Documents as a batch function is given them (id and recorded text)."""
    return [SimpleNamespace(id=doc_id, text=text) for doc_id, text in zip(ids, texts, strict=True)]


def counters(engine, job_id: str) -> dict[str, int]:
    """What ``lstmq status`` shows, after checking it against a real count of the documents."""
    with session_scope(engine) as session:
        status = job_status(session, job_id)
    kept = {"done": status.done, "failed": status.failed, "pending": status.pending}
    counted = status_counts(engine, job_id)
    assert kept == {s: counted.get(s, 0) for s in STATUSES}, "counters drifted from the documents"
    return kept


def test_a_run_counts_each_document_once_and_finishes_the_job(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    assert counters(migrated_db, job_id) == {"done": 0, "failed": 0, "pending": 5}
    run(migrated_db, job_id, ids[:2])
    run(migrated_db, job_id, ids[2:])
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 1, "pending": 0}
    with session_scope(migrated_db) as session:
        listed = list_jobs(session)[0]
    assert (listed.state, listed.total, listed.done, listed.failed) == (JOB_FINISHED, 5, 4, 1)


def test_a_redelivered_outcome_written_twice_counts_once(migrated_db):
    # Two copies that both read the documents as pending before either wrote: both write.
    job_id, ids = add_job(migrated_db, TEXTS)
    outcome = classified(docs_of(ids, TEXTS))
    write_outcome(migrated_db, outcome, RESULTS)
    write_outcome(migrated_db, outcome, RESULTS)
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 1, "pending": 0}
    run(migrated_db, job_id, ids)  # a redelivery that reads them done: only the failed one again
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 1, "pending": 0}


def test_a_failure_never_undoes_a_done_document_and_a_later_success_moves_a_failed_one(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids)
    with session_scope(migrated_db) as session:  # a copy of the batch that ran out of memory
        set_document_status(session, [], {doc_id: "out of memory" for doc_id in ids})
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 1, "pending": 0}
    run(migrated_db, job_id, ids, fail_on=None)  # the failed one succeeds on a redelivery
    assert counters(migrated_db, job_id) == {"done": 5, "failed": 0, "pending": 0}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_concurrent_copies_of_a_batch_count_once(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    outcome = classified(docs_of(ids, TEXTS))
    with session_scope(migrated_db) as session:  # the first copy, inside its transaction
        set_document_status(session, [row["document_id"] for row in outcome.rows], outcome.failed)
        second = threading.Thread(target=write_outcome, args=(migrated_db, outcome, RESULTS))
        second.start()
        time.sleep(0.5)
        assert second.is_alive(), "the second copy should wait on the first one's row locks"
    second.join(timeout=10)
    assert not second.is_alive()
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 1, "pending": 0}


def test_requeue_failed_reopens_and_reprocessing_counts_them_done(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids)
    assert requeue(migrated_db, job_id, failed=True) == 1
    assert counters(migrated_db, job_id) == {"done": 4, "failed": 0, "pending": 1}
    run(migrated_db, job_id, ids, fail_on=None)
    assert counters(migrated_db, job_id) == {"done": 5, "failed": 0, "pending": 0}


def test_giving_up_a_batch_or_one_that_killed_its_workers_counts_the_failures(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids[:1])
    give_up(migrated_db, batch_of(job_id, "news", ids[1:3]), "worker died 3 times")
    assert counters(migrated_db, job_id) == {"done": 1, "failed": 2, "pending": 2}
    batch_id = add_batch(migrated_db, job_id, ids[3:], state="running", worker="gone", worker_pid=1, kills=2)
    [batch] = [b for b in batches_of(migrated_db, job_id) if b.id == batch_id]
    reconcile.recover(migrated_db, None, reconcile.Lost(batch, reconcile.KILLED), utcnow())
    assert counters(migrated_db, job_id) == {"done": 1, "failed": 4, "pending": 0}


def test_a_cancelled_job_keeps_its_counts_and_its_batches_change_nothing(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    run(migrated_db, job_id, ids[:2])
    with session_scope(migrated_db) as session:
        assert cancel_job(session, job_id).pending == 3
    assert run(migrated_db, job_id, ids)["skipped"] == 5
    assert counters(migrated_db, job_id) == {"done": 2, "failed": 0, "pending": 3}


def test_progress_moves_forward_only_and_dates_a_finished_job(migrated_db):
    job_id, ids = add_job(migrated_db, ["one", "two"])
    later = utcnow() + timedelta(minutes=5)
    with session_scope(migrated_db) as session:
        set_document_status(session, ids[:1], {})
    with session_scope(migrated_db) as session:
        session.get(Job, job_id).progressed_at = later  # a clock ahead on another worker
    run(migrated_db, job_id, ids[1:])
    with session_scope(migrated_db) as session:
        status = job_status(session, job_id)
    assert status.finished and status.finished_at == later


def test_the_migration_counts_the_documents_already_there(db_url, lstmq_env):
    lstmq_env(database_url=db_url)
    engine = get_engine()
    upgrade(engine, "0005")
    job_id, last = _job_at_0005(engine, {"done": 3, "failed": 2, "pending": 4})
    upgrade(engine)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert (job.total, job.done_count, job.failed_count) == (9, 3, 2)
        assert as_utc(job.progressed_at) == last
    assert counters(engine, job_id) == {"done": 3, "failed": 2, "pending": 4}
    command.downgrade(alembic_config(engine), "0005")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Document)) == 9


def _job_at_0005(engine, statuses: dict[str, int]):
    """A job as schema 0005 stored it (total 0: an old submit that never saved it); returns
    (job id, its documents' last updated_at)."""
    job_id, at = uuid.uuid4().hex, utcnow()
    with session_scope(engine) as session:
        session.execute(
            text(
                "INSERT INTO jobs (id, task, model, state, total, rejected, sources, options, created_at, recoveries)"
                " VALUES (:id, 'classify', 'news', 'queued', 0, 0, '[]', '{}', :at, 0)"
            ),
            {"id": job_id, "at": at},
        )
        n = 0
        for status, how_many in statuses.items():
            for _ in range(how_many):
                n += 1
                session.add(_document(job_id, n, status, at + timedelta(seconds=n)))
    return job_id, at + timedelta(seconds=n)


def _document(job_id: str, n: int, status: str, at) -> Document:
    return Document(
        job_id=job_id,
        external_id=str(n),
        source="test",
        record_no=n,
        line_no=n,
        content_hash=f"{n:064d}",
        text=f"text {n}",
        status=status,
        updated_at=at,
    )
