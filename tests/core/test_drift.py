"""Drift of a schedule's runs: label mix and score histogram by PSI against the first run."""

from __future__ import annotations

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import Schedule, ScheduleRun
from lstmq.drift import jobs_drift, latest_drift, schedule_drift
from lstmq.errors import InputError, ScheduleNotFound
from tests.support.jobs import add_job, add_results

MOSTLY_WORLD = [("World", 0.9)] * 80 + [("Sports", 0.8)] * 20
MOSTLY_SPORTS = [("Sports", 0.8)] * 85 + [("World", 0.9)] * 15


def add_run(engine, schedule_id, results):
    job_id, ids = add_job(engine, [f"t{i}" for i in range(len(results))])
    add_results(engine, job_id, ids, results)
    with session_scope(engine) as session:
        session.add(ScheduleRun(schedule_id=schedule_id, trigger="beat", state="ok", job_id=job_id))
    return job_id


@pytest.fixture
def schedule(migrated_db):
    with session_scope(migrated_db) as session:
        found = Schedule(name="wire", path_glob="/x/*.jsonl", task="classify", model="news", every_s=60)
        session.add(found)
        session.flush()
        return found.id


def drifted(engine, **options):
    with session_scope(engine) as session:
        return [run["drifted"] for run in schedule_drift(session, "wire", **options)["runs"]]


def test_a_run_of_the_same_mix_has_not_drifted_and_a_switch_to_sports_has(migrated_db, schedule):
    for mix in (MOSTLY_WORLD, MOSTLY_WORLD, MOSTLY_SPORTS):
        add_run(migrated_db, schedule, mix)
    assert drifted(migrated_db) == [False, False, True]


def test_the_threshold_decides_what_counts_as_drift(migrated_db, schedule):
    for mix in (MOSTLY_WORLD, MOSTLY_SPORTS):
        add_run(migrated_db, schedule, mix)
    assert drifted(migrated_db, threshold=100.0) == [False, False]


def test_a_later_reference_run_is_compared_against(migrated_db, schedule):
    for mix in (MOSTLY_WORLD, MOSTLY_SPORTS, MOSTLY_SPORTS):
        add_run(migrated_db, schedule, mix)
    with session_scope(migrated_db) as session:
        second = sorted(session.scalars(ScheduleRun.__table__.select().with_only_columns(ScheduleRun.id)))[1]
    assert drifted(migrated_db, reference_run=second) == [True, False, False]


def test_two_jobs_compare_by_model(migrated_db, schedule):
    a, b = add_run(migrated_db, schedule, MOSTLY_WORLD), add_run(migrated_db, schedule, MOSTLY_SPORTS)
    with session_scope(migrated_db) as session:
        (run,) = jobs_drift(session, "news", a, b)["runs"]
    assert run["drifted"] and run["labels"] == {"Sports": 85, "World": 15}


def test_unknown_schedule_and_a_schedule_without_runs_are_user_errors(migrated_db, schedule):
    with session_scope(migrated_db) as session, pytest.raises(ScheduleNotFound):
        schedule_drift(session, "nope")
    with session_scope(migrated_db) as session, pytest.raises(InputError, match="no run"):
        schedule_drift(session, "wire")


def test_the_latest_run_of_each_schedule_is_compared_with_its_first(migrated_db, schedule):
    for mix in (MOSTLY_WORLD, MOSTLY_WORLD, MOSTLY_SPORTS):
        add_run(migrated_db, schedule, mix)
    with session_scope(migrated_db) as session:
        found = latest_drift(session)["wire"]
    assert found["drifted"] and found["labels"] == {"Sports": 85, "World": 15}
