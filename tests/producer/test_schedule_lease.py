"""A schedule's lease: one holder at a time, a fenced write fails for anyone else, and a
released or expired lease can be taken again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.schema import Schedule, utcnow
from lstmq.errors import LeaseLost
from lstmq.producer.schedules import lease


@pytest.fixture
def schedule_id(migrated_db) -> int:
    with session_scope(migrated_db) as session:
        row = Schedule(name="s", path_glob="/x/*.jsonl", task="classify", model="m", every_s=60)
        session.add(row)
        session.flush()
        return row.id


def take(engine, schedule_id: int, token: str, now=None, beat: bool = False) -> bool:
    with session_scope(engine) as session:
        return lease.take(session, schedule_id, token, now or utcnow(), beat)


def test_a_live_lease_has_one_holder_until_it_is_released(migrated_db, schedule_id):
    assert take(migrated_db, schedule_id, "a")
    assert not take(migrated_db, schedule_id, "b")
    with session_scope(migrated_db) as session:
        lease.release(session, schedule_id, "b")  # not b's: changes nothing
    assert not take(migrated_db, schedule_id, "b")
    with session_scope(migrated_db) as session:
        lease.release(session, schedule_id, "a")
    assert take(migrated_db, schedule_id, "b")


def test_an_expired_lease_is_taken_over_and_fences_out_its_old_holder(migrated_db, schedule_id):
    assert take(migrated_db, schedule_id, "a")
    later = utcnow() + timedelta(seconds=lease.LEASE_S + 1)
    assert take(migrated_db, schedule_id, "b", now=later)
    with pytest.raises(LeaseLost, match="lease lost to another run"), session_scope(migrated_db) as session:
        lease.fence(session, schedule_id, "a")
    with session_scope(migrated_db) as session:
        lease.fence(session, schedule_id, "b")


def test_beat_does_not_take_the_lease_of_a_paused_schedule(migrated_db, schedule_id):
    with session_scope(migrated_db) as session:
        session.get(Schedule, schedule_id).paused = True
    assert not take(migrated_db, schedule_id, "a", beat=True)
    assert take(migrated_db, schedule_id, "a", beat=False)
