"""The scheduler process for real: `lstmq scheduler` subprocesses (Celery beat + RedBeat)
against this machine's PostgreSQL and Redis. Batches are read from Redis, no worker needed.
Every wait is bounded; every scheduler started here is stopped in teardown."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import ScheduleRun, utcnow
from producer.schedules.store import NewSchedule, add_schedule
from producer.schedules.timing import Timing
from tests.support.inputs import write
from tests.support.queued import queued_texts
from tests.support.schedules import beat_runs
from tests.support.waiting import wait_until

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def corpus(tmp_path, migrated_db, celery_app, models):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "day1.jsonl", "a1", "a2")
    return folder


def add(engine, corpus: Path, every_s: int = 2) -> int:
    with session_scope(engine) as session:
        return add_schedule(
            session,
            NewSchedule(
                name="dumps",
                path=str(corpus / "*.jsonl"),
                task="classify",
                model="tiny-clf",
                timing=Timing(every_s=every_s),
            ),
        ).id


def test_a_corpus_on_a_2s_schedule_has_appended_lines_and_new_files_queued_exactly_once(
    migrated_db, redis_url, corpus, start
):
    add(migrated_db, corpus)
    start()
    wait_until(lambda: queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1}), 20, "first run")
    write(corpus / "day1.jsonl", "a3")
    write(corpus / "day2.jsonl", "b1", "b2")
    expected = Counter({t: 1 for t in ("a1", "a2", "a3", "b1", "b2")})
    wait_until(lambda: queued_texts(migrated_db, redis_url) == expected, 20, "appended lines and new file")
    seen = len(beat_runs(migrated_db))
    wait_until(lambda: len(beat_runs(migrated_db)) >= seen + 3, 20, "three more runs")
    assert queued_texts(migrated_db, redis_url) == expected  # unchanged corpus: nothing more
    assert [r.queued for r in beat_runs(migrated_db)[seen:]] == [0] * (len(beat_runs(migrated_db)) - seen)


def test_two_schedulers_started_together_fire_each_entry_once_and_one_takes_over(migrated_db, redis_url, corpus, start):
    add(migrated_db, corpus)
    first, second = start(), start()
    wait_until(lambda: len(beat_runs(migrated_db)) >= 5, 30, "five runs")
    runs = beat_runs(migrated_db)
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in pairwise(runs)]
    assert min(gaps) > 0.5, f"an entry fired twice: gaps {gaps}"
    assert {r.state for r in runs} <= {"ok", "running"}  # no "skipped": never two at once
    assert [p.log().count("beat: Acquired lock") for p in (first, second)].count(1) == 1
    holder, standby = (first, second) if "Acquired lock" in first.log() else (second, first)
    assert holder.stop() == 0
    count = len(beat_runs(migrated_db))
    wait_until(lambda: len(beat_runs(migrated_db)) >= count + 2, 30, "the standby to take over")
    assert "beat: Acquired lock" in standby.log()
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1})


def test_sigterm_stops_the_scheduler_cleanly_and_a_restart_goes_on_exactly_once(migrated_db, redis_url, corpus, start):
    import redis

    add(migrated_db, corpus)
    proc = start()
    wait_until(lambda: queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1}), 20, "a run")
    began = time.monotonic()
    assert proc.stop() == 0
    assert time.monotonic() - began < 10
    assert "beat: Releasing lock" in proc.log()
    assert redis.Redis.from_url(redis_url).exists("lstmq:redbeat::lock") == 0
    write(corpus / "day1.jsonl", "a3")  # while no scheduler runs
    start()
    expected = Counter({"a1": 1, "a2": 1, "a3": 1})
    wait_until(lambda: queued_texts(migrated_db, redis_url) == expected, 20, "the restarted scheduler")
    runs = len(beat_runs(migrated_db))
    wait_until(lambda: len(beat_runs(migrated_db)) >= runs + 2, 20, "two more runs")
    assert queued_texts(migrated_db, redis_url) == expected


def test_after_downtime_a_missed_entry_runs_once_not_once_per_missed_period(migrated_db, redis_url, corpus, start):
    sched_id = add(migrated_db, corpus, every_s=3600)
    with session_scope(migrated_db) as session:  # beat last ran it 5 hours ago, then was down
        session.add(
            ScheduleRun(
                schedule_id=sched_id,
                trigger="beat",
                state="ok",
                started_at=utcnow() - timedelta(hours=5),
                finished_at=utcnow() - timedelta(hours=5),
            )
        )
    start()
    wait_until(lambda: len(beat_runs(migrated_db)) == 2, 20, "the missed run")
    time.sleep(6)  # three beat ticks: a catch-up loop would have fired again by now
    assert len(beat_runs(migrated_db)) == 2


def test_a_paused_schedule_stops_firing_and_fires_again_when_resumed(migrated_db, redis_url, corpus, start):
    from producer.schedules.store import set_paused

    add(migrated_db, corpus)
    start()
    wait_until(lambda: beat_runs(migrated_db), 20, "a run")
    with session_scope(migrated_db) as session:
        set_paused(session, "dumps", True)
    time.sleep(3)  # the beat notices within one tick
    count = len(beat_runs(migrated_db))
    time.sleep(5)
    assert len(beat_runs(migrated_db)) == count
    with session_scope(migrated_db) as session:
        set_paused(session, "dumps", False)
    wait_until(lambda: len(beat_runs(migrated_db)) > count, 15, "a run after resume")
