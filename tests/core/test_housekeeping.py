"""The workers' daily housekeeping: one worker a day runs it; it applies LSTMQ_RETAIN and sweeps
dead worker rows, expired idempotency keys and stale upload spools, keeping what is fresh."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from lstmq import housekeeping
from lstmq.db.engine import session_scope
from lstmq.db.schema import ApiToken, IdempotencyKey, WorkerBeat, utcnow
from lstmq.housekeeping import SPOOL_PREFIX, due, housekeep, sweep_spools
from lstmq.settings import get_settings
from lstmq.worker.heal import heartbeat
from tests.core.test_retention import job_ids, old_job

DAY = timedelta(days=1)


def test_one_caller_a_day_takes_the_housekeeping(migrated_db):
    now = utcnow()
    assert [due(migrated_db, now), due(migrated_db, now + timedelta(hours=23))] == [True, False]


def test_the_housekeeping_is_due_again_the_next_day(migrated_db):
    now = utcnow()
    due(migrated_db, now)
    assert due(migrated_db, now + DAY + timedelta(seconds=1))


def test_housekeeping_prunes_jobs_older_than_lstmq_retain(migrated_db, lstmq_env, db_url):
    lstmq_env(database_url=db_url, retain="30d")
    recent = old_job(migrated_db, age=timedelta(days=2))
    old_job(migrated_db, age=timedelta(days=40))
    housekeep(migrated_db, get_settings())
    assert job_ids(migrated_db) == {recent}


def test_housekeeping_keeps_every_job_when_lstmq_retain_is_unset(migrated_db):
    job_id = old_job(migrated_db, age=timedelta(days=4000))
    housekeep(migrated_db, get_settings())
    assert job_ids(migrated_db) == {job_id}


def test_housekeeping_removes_worker_rows_dead_for_over_a_day(migrated_db):
    now = utcnow()
    with session_scope(migrated_db) as session:
        for pid, beat in ((1, now - DAY - timedelta(minutes=1)), (2, now - timedelta(hours=1))):
            session.add(WorkerBeat(name="w", pid=pid, device="cpu", beat_at=beat))
    housekeep(migrated_db, get_settings(), now)
    with session_scope(migrated_db) as session:
        assert list(session.scalars(select(WorkerBeat.pid))) == [2]


def test_housekeeping_removes_idempotency_keys_older_than_a_day(migrated_db):
    now = utcnow()
    with session_scope(migrated_db) as session:
        session.add(ApiToken(id="tok", name="t", scope="submit", salt="s", secret_hash="h"))
        session.flush()
        for key, made in (("old", now - DAY - timedelta(minutes=1)), ("new", now - timedelta(hours=1))):
            session.add(IdempotencyKey(token_id="tok", key=key, request_hash="x", created_at=made))
    housekeep(migrated_db, get_settings(), now)
    with session_scope(migrated_db) as session:
        assert list(session.scalars(select(IdempotencyKey.key))) == ["new"]


def spool(folder, name: str, age: timedelta):
    path = folder / name
    path.mkdir()
    (path / "body").write_bytes(b"{}")
    moment = (utcnow() - age).timestamp()
    for item in (path / "body", path):
        os.utime(item, (moment, moment))
    return path


def test_an_upload_spool_untouched_for_a_day_is_removed(tmp_path):
    spool(tmp_path, SPOOL_PREFIX + "old", DAY + timedelta(minutes=1))
    assert (sweep_spools(tmp_path), list(tmp_path.iterdir())) == (1, [])


def test_a_fresh_upload_spool_and_other_folders_are_kept(tmp_path):
    kept = {spool(tmp_path, SPOOL_PREFIX + "new", timedelta(hours=1)), spool(tmp_path, "other", 2 * DAY)}
    sweep_spools(tmp_path)
    assert set(tmp_path.iterdir()) == kept


def test_a_worker_offers_housekeeping_once_an_hour_in_its_own_thread(migrated_db, monkeypatch):
    ran = []
    finished = threading.Event()
    monkeypatch.setattr(
        heartbeat, "run_daily", lambda settings: (ran.append(threading.current_thread().name), finished.set())
    )
    beats = heartbeat.Heartbeat(app=None, identity=None)
    beats._housekeep()
    assert finished.wait(10)
    beats.housekeeping.join(10)
    beats._housekeep()  # within the hour: not offered again
    assert ran == ["lstmq-housekeeping"]


@pytest.fixture(autouse=True)
def no_real_spools(monkeypatch, tmp_path_factory):
    """housekeep() sweeps the system's temporary folder: point it at this test's own."""
    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(housekeeping.tempfile, "gettempdir", lambda: str(folder))


def test_run_daily_sweeps_once_and_the_second_call_that_day_does_nothing(migrated_db, lstmq_env, db_url):
    lstmq_env(database_url=db_url, retain="30d")
    old_job(migrated_db, age=timedelta(days=40))
    first, second = housekeeping.run_daily(get_settings()), housekeeping.run_daily(get_settings())
    assert (first.pruned.jobs, second) == (1, None)
