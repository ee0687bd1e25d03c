"""Turning result reuse off: `lstmq submit --no-reuse` and `schedule add --no-reuse` mark the
jobs; status lines and job lists say how many done documents were reused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from lstmq.db.engine import session_scope
from lstmq.db.queries import job_status
from lstmq.db.schema import Job
from lstmq.dispatch.reuse import REUSE
from lstmq.producer import output
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.store import NewSchedule, add_schedule
from lstmq.producer.schedules.timing import Timing
from lstmq.producer.submit import submit_records
from lstmq.readers.records import Record
from tests.support.jobs import add_job
from tests.support.processes import run_lstmq

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # subprocesses are slow


def options_of(engine, job_id: str) -> dict:
    with session_scope(engine) as session:
        return session.get(Job, job_id).options


@sqlite_only
def test_submit_no_reuse_turns_reuse_off_for_the_job(migrated_db, celery_app, models, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "x"}\n')
    proc = run_lstmq("submit", str(tmp_path / "in.jsonl"), "--model", "tiny-clf", "--no-reuse")
    assert proc.returncode == 0, proc.stderr
    assert options_of(migrated_db, proc.stdout.decode().split()[-1])[REUSE] is False


def test_a_submit_reuses_unless_told_not_to(migrated_db, celery_app, models):
    report = submit_records(migrated_db, celery_app, [Record("x")], task="classify", model="tiny-clf")
    assert options_of(migrated_db, report.job_id).get(REUSE, True) is True


def test_a_no_reuse_schedules_runs_turn_reuse_off(migrated_db, celery_app, models, tmp_path):
    (tmp_path / "day1.jsonl").write_text('{"text": "a1"}\n')
    new = NewSchedule("dumps", str(tmp_path / "*.jsonl"), "classify", "tiny-clf", Timing(every_s=3600), reuse=False)
    with session_scope(migrated_db) as session:
        sched_id = add_schedule(session, new).id
    report = run_schedule(migrated_db, celery_app, sched_id)
    assert options_of(migrated_db, report.job_id)[REUSE] is False


@pytest.fixture
def reused_job(migrated_db) -> str:
    """A finished job of 3 documents, 2 of them reused."""
    job_id, _ = add_job(migrated_db, ["one", "two", "three"], model="news")
    with session_scope(migrated_db) as session:
        session.execute(update(Job).where(Job.id == job_id).values(state="finished", done_count=3, reused_count=2))
    return job_id


def test_status_says_how_many_of_the_done_documents_were_reused(migrated_db, reused_job):
    with session_scope(migrated_db) as session:
        line = output.describe(job_status(session, reused_job)).splitlines()[2]
    assert line.startswith("total 3  done 3 (2 reused)  failed 0")


@sqlite_only
def test_jobs_json_lists_the_reused_count(migrated_db, reused_job):
    [job] = json.loads(run_lstmq("jobs", "--json").stdout)
    assert (job["done"], job["reused"]) == (3, 2)
