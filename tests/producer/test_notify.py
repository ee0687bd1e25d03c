"""Registering webhook receivers: `lstmq submit --notify`, schedules' receivers given to their
runs' jobs, and mistakes refused with one line before anything is recorded; `lstmq webhooks`
lists deliveries and `replay` queues one again."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Job, WebhookDelivery
from lstmq.db.transitions import cancel_job
from lstmq.errors import UnsafeReceiver
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.store import NewSchedule, add_schedule
from lstmq.producer.schedules.timing import Timing
from lstmq.producer.submit import submit_records
from lstmq.readers.records import Record
from lstmq.settings import get_settings
from lstmq.webhooks.events import NOTIFY, PENDING
from tests.support.processes import run_lstmq

HOOK = "http://127.0.0.1:9/hook"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # subprocesses are slow


@pytest.fixture
def secret(monkeypatch):
    def configure(allow_private: bool) -> None:
        monkeypatch.setenv("LSTMQ_WEBHOOK_SECRET", "s3cret-value")
        monkeypatch.setenv("LSTMQ_WEBHOOK_ALLOW_PRIVATE", "true" if allow_private else "false")
        get_settings.cache_clear()

    return configure


def jobs_in(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(Job))


@sqlite_only
def test_submit_notify_without_a_secret_is_one_line_and_records_nothing(migrated_db, celery_app, models, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "x"}\n')
    proc = run_lstmq("submit", str(tmp_path / "in.jsonl"), "--model", "tiny-clf", "--notify", HOOK)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1].startswith("error: --notify needs LSTMQ_WEBHOOK_SECRET set")
    assert jobs_in(migrated_db) == 0


@sqlite_only
def test_submit_notify_to_loopback_without_the_allow_setting_is_refused(
    migrated_db, celery_app, models, tmp_path, secret
):
    secret(allow_private=False)
    (tmp_path / "in.jsonl").write_text('{"text": "x"}\n')
    proc = run_lstmq("submit", str(tmp_path / "in.jsonl"), "--model", "tiny-clf", "--notify", HOOK)
    last = proc.stderr.decode().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: webhook URL http://127.0.0.1:9/hook: 127.0.0.1 is")
    assert "LSTMQ_WEBHOOK_ALLOW_PRIVATE" in last and "s3cret-value" not in proc.stderr.decode()
    assert jobs_in(migrated_db) == 0


def test_submit_records_the_receivers_on_the_job(migrated_db, celery_app, models, secret):
    secret(allow_private=True)
    report = submit_records(migrated_db, celery_app, [Record("x")], task="classify", model="tiny-clf", notify=[HOOK])
    with session_scope(migrated_db) as session:
        assert session.get(Job, report.job_id).options[NOTIFY] == [HOOK]


def test_a_schedules_receivers_are_given_to_its_runs_jobs(migrated_db, celery_app, models, secret, tmp_path):
    secret(allow_private=True)
    (tmp_path / "day1.jsonl").write_text('{"text": "a1"}\n')
    new = NewSchedule("dumps", str(tmp_path / "*.jsonl"), "classify", "tiny-clf", Timing(every_s=3600), notify=(HOOK,))
    with session_scope(migrated_db) as session:
        sched_id = add_schedule(session, new).id
    report = run_schedule(migrated_db, celery_app, sched_id)
    with session_scope(migrated_db) as session:
        assert session.get(Job, report.job_id).options[NOTIFY] == [HOOK]


def test_a_schedule_with_an_unsafe_receiver_is_refused(migrated_db, models, secret, tmp_path):
    secret(allow_private=False)
    (tmp_path / "day1.jsonl").write_text('{"text": "a1"}\n')
    new = NewSchedule("dumps", str(tmp_path / "*.jsonl"), "classify", "tiny-clf", Timing(every_s=3600), notify=(HOOK,))
    with session_scope(migrated_db) as session, pytest.raises(UnsafeReceiver):
        add_schedule(session, new)


@sqlite_only
def test_webhooks_lists_deliveries_and_replay_queues_one_again(migrated_db, celery_app, models, secret):
    secret(allow_private=True)
    report = submit_records(migrated_db, celery_app, [Record("x")], task="classify", model="tiny-clf", notify=[HOOK])
    with session_scope(migrated_db) as session:
        cancel_job(session, report.job_id)
        delivery = session.scalars(select(WebhookDelivery)).one()
        delivery.state, delivery.attempts, delivery.next_attempt_at = "failed", 3, None
        delivery_id = delivery.id
    [listed] = json.loads(run_lstmq("webhooks", "--json").stdout)
    assert (listed["job"], listed["event"], listed["url"], listed["attempts"]) == (
        report.job_id,
        "job.cancelled",
        HOOK,
        3,
    )
    assert run_lstmq("webhooks", "replay", str(delivery_id)).returncode == 0
    with session_scope(migrated_db) as session:
        again = session.get(WebhookDelivery, delivery_id)
        assert (again.state, again.attempts, again.next_attempt_at is not None) == (PENDING, 0, True)


@sqlite_only
def test_replaying_an_unknown_delivery_is_one_line(migrated_db):
    proc = run_lstmq("webhooks", "replay", "999")
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1] == "error: no webhook delivery 999 (see `lstmq webhooks`)"
