"""The scheduler process for real: `lstmq scheduler` subprocesses (Celery beat + RedBeat)
against this machine's PostgreSQL and Redis. Batches are read from Redis, no worker needed.
Every wait is bounded and waits for an event (a run row, a log line), never for a guessed time;
"it did not fire" is asserted only after a second schedule's firings prove beat kept ticking.
Every scheduler started here is stopped in teardown."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from lstmq.db.engine import session_scope
from lstmq.db.schema import ScheduleRun, utcnow
from lstmq.producer.schedules.store import NewSchedule, add_schedule, set_paused
from lstmq.producer.schedules.timing import Timing
from tests.support.inputs import write
from tests.support.queued import queued_texts
from tests.support.schedules import beat_runs, fired
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]

TICKER = "ticker"


@pytest.fixture
def corpus(tmp_path, migrated_db, celery_app, models):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "day1.jsonl", "a1", "a2")
    return folder


@pytest.fixture
def ticker(tmp_path, migrated_db, corpus) -> str:
    """A second schedule, every second over an empty file: its firings prove that beat ticks."""
    (tmp_path / "idle").mkdir()
    write(tmp_path / "idle" / "empty.jsonl", mode="w")
    add(migrated_db, tmp_path / "idle", every_s=1, name=TICKER)
    return TICKER


def add(engine, corpus: Path, every_s: int = 2, name: str = "dumps") -> int:
    with session_scope(engine) as session:
        return add_schedule(
            session,
            NewSchedule(
                name=name,
                path=str(corpus / "*.jsonl"),
                task="classify",
                model="tiny-clf",
                timing=Timing(every_s=every_s),
            ),
        ).id


def wait_ticks(scheduler, ticks: int) -> None:
    """Wait until beat has fired the ticker ``ticks`` more times (so ticked that many times)."""
    before = fired(scheduler, TICKER)
    wait_until(lambda: fired(scheduler, TICKER) >= before + ticks, 20, f"{ticks} beat ticks")


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
    holder, standby = (first, second) if "beat: Acquired lock" in first.log() else (second, first)
    assert "beat: Acquired lock" not in standby.log()
    assert fired(standby, "dumps") == 0, "both schedulers fired the entry"
    assert {r.state for r in beat_runs(migrated_db)} <= {"ok", "running"}  # no "skipped": never two at once
    assert holder.stop() == 0
    wait_until(lambda: fired(standby, "dumps") >= 2, 30, "the standby to take over")
    assert "beat: Acquired lock" in standby.log()
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1})


def test_sigterm_stops_the_scheduler_cleanly_and_a_restart_goes_on_exactly_once(migrated_db, redis_url, corpus, start):
    add(migrated_db, corpus)
    proc = start()
    wait_until(lambda: queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1}), 20, "a run")
    assert proc.stop() == 0  # SIGTERM did it: a scheduler that hangs is SIGKILLed by stop(), exit -9
    assert "beat: Releasing lock" in proc.log()
    assert redis.Redis.from_url(redis_url).exists("lstmq:redbeat::lock") == 0
    write(corpus / "day1.jsonl", "a3")  # while no scheduler runs
    start()
    expected = Counter({"a1": 1, "a2": 1, "a3": 1})
    wait_until(lambda: queued_texts(migrated_db, redis_url) == expected, 20, "the restarted scheduler")
    runs = len(beat_runs(migrated_db))
    wait_until(lambda: len(beat_runs(migrated_db)) >= runs + 2, 20, "two more runs")
    assert queued_texts(migrated_db, redis_url) == expected


def test_after_downtime_a_missed_entry_runs_once_not_once_per_missed_period(migrated_db, corpus, ticker, start):
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
    proc = start()
    wait_until(lambda: len(beat_runs(migrated_db, sched_id)) == 2, 20, "the missed run")
    wait_ticks(proc, 3)  # a catch-up loop would have fired again by now
    assert (fired(proc, "dumps"), len(beat_runs(migrated_db, sched_id))) == (1, 2)


def test_a_paused_schedule_stops_firing_and_fires_again_when_resumed(migrated_db, corpus, ticker, start):
    add(migrated_db, corpus)
    proc = start()
    wait_until(lambda: fired(proc, "dumps"), 20, "a firing")
    with session_scope(migrated_db) as session:
        set_paused(session, "dumps", True)
    wait_ticks(proc, 2)  # the second of these ticks began after the pause, so it saw it
    paused_at = fired(proc, "dumps")
    wait_ticks(proc, 3)
    assert fired(proc, "dumps") == paused_at
    with session_scope(migrated_db) as session:
        set_paused(session, "dumps", False)
    wait_until(lambda: fired(proc, "dumps") > paused_at, 15, "a firing after resume")
