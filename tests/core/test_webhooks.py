"""Webhooks: events written with the transaction that causes them, delivered at least once by
the delivery loop (driven here with a clock the test moves), signed, retried on 5xx with the
same event id, given up on other 4xx, and never sent to a receiver lstmq refuses."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.queries import job_object
from lstmq.db.schema import WebhookDelivery, as_utc, utcnow
from lstmq.db.transitions import cancel_job
from lstmq.errors import ConfigError, UnsafeReceiver
from lstmq.settings import get_settings
from lstmq.webhooks import events
from lstmq.webhooks.delivery import Attempt, backoff_s, claim, deliver_due
from lstmq.webhooks.receivers import check_receivers, resolve
from lstmq.webhooks.signing import HEADER, verify
from lstmq.worker.batches import set_document_status
from lstmq.worker.heal import reconcile
from tests.core.test_job_counters import TEXTS, run
from tests.support import webhooks
from tests.support.jobs import add_batch, batches_of
from tests.support.webhooks import SECRET, receiver


def notified_job(engine, url: str, texts=TEXTS) -> tuple[str, list[int]]:
    return webhooks.notified_job(engine, url, texts)


def deliver_until_settled(engine, start, allow_private=True, passes=10) -> int:
    """Run the loop at each moment a delivery is due (the clock jumps; nobody sleeps)."""
    now, attempted = start, 0
    for attempt in range(1, passes + 1):
        attempted += deliver_due(engine, SECRET, allow_private, now)
        now += timedelta(seconds=backoff_s(attempt))
    return attempted


def deliveries(engine, job_id: str) -> list[WebhookDelivery]:
    with session_scope(engine) as session:
        rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)))
        session.expunge_all()
        return rows


def test_a_receiver_failing_twice_gets_one_accepted_signed_delivery_per_event_with_one_id(webhook_env):
    with receiver(failures_per_event=2) as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids)  # one document fails: job.finished and job.failed_documents
        deliver_until_settled(webhook_env, utcnow())
    accepted = Counter(r.event["type"] for r in hook.accepted())
    assert accepted == {events.JOB_FINISHED: 1, events.JOB_FAILED_DOCUMENTS: 1}
    ids_per_type = defaultdict(set)
    for r in hook.got:
        ids_per_type[r.event["type"]].add(r.event["id"])
    assert all(len(seen) == 1 for seen in ids_per_type.values()), "an event changed its id between attempts"
    assert len(hook.got) == 6  # two 503s and one acceptance each
    for r in hook.got:
        t = int(r.headers[HEADER].split(",")[0].removeprefix("t="))
        assert verify(SECRET, r.headers[HEADER], r.body, now=t)
    assert {d.state for d in deliveries(webhook_env, job_id)} == {events.DELIVERED}


def test_a_finished_job_sends_job_finished_with_the_job_object(webhook_env):
    with receiver() as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_until_settled(webhook_env, utcnow())
    [got] = hook.got
    with session_scope(webhook_env) as session:
        settings = get_settings()
        expected = job_object(session, job_id, settings.heartbeat_s, settings.stall_after_s)
    assert got.event["type"] == events.JOB_FINISHED
    assert got.event["job"] == expected and expected["state"] == "finished"


def test_the_event_is_written_by_the_transaction_of_the_last_result(webhook_env):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook", texts=["one", "two"])
    with session_scope(webhook_env) as session:
        set_document_status(session, ids[:1], {})
        assert session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id)) is None
        set_document_status(session, ids[1:], {})
        assert session.scalar(select(WebhookDelivery.event).where(WebhookDelivery.job_id == job_id)) == "job.finished"


def test_a_job_without_failures_sends_no_failed_documents_event(webhook_env):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    run(webhook_env, job_id, ids, fail_on=None)
    assert [d.event for d in deliveries(webhook_env, job_id)] == [events.JOB_FINISHED]


def test_a_cancel_sends_job_cancelled(webhook_env):
    job_id, _ = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    with session_scope(webhook_env) as session:
        cancel_job(session, job_id)
    assert [d.event for d in deliveries(webhook_env, job_id)] == [events.JOB_CANCELLED]


def test_a_4xx_answer_is_given_up_after_one_attempt_and_recorded(webhook_env):
    with receiver(status=404) as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_until_settled(webhook_env, utcnow())
    [delivery] = deliveries(webhook_env, job_id)
    assert (len(hook.got), delivery.state, delivery.last_status, delivery.attempts) == (1, events.FAILED, 404, 1)


def test_a_delivery_is_claimed_by_one_loop_at_a_time(webhook_env):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    run(webhook_env, job_id, ids, fail_on=None)
    now = utcnow()
    assert len(claim(webhook_env, now)) == 1
    assert claim(webhook_env, now) == []


def test_a_loopback_receiver_is_never_delivered_to_without_the_allow_setting(webhook_env):
    with receiver() as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_until_settled(webhook_env, utcnow(), allow_private=False)
    [delivery] = deliveries(webhook_env, job_id)
    assert hook.got == [] and delivery.state == events.FAILED
    assert "non-global address" in delivery.last_error


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/hook", "http://localhost:8080/hook", "http://[::1]/hook", "http://169.254.169.254/latest"],
)
def test_private_loopback_and_link_local_receivers_are_refused(url):
    with pytest.raises(UnsafeReceiver, match="non-global address"):
        resolve(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "gopher://example.com/"])
def test_receivers_other_than_http_and_https_are_refused(url):
    with pytest.raises(UnsafeReceiver, match="only http and https"):
        resolve(url, allow_private=True)


def test_registering_a_receiver_without_a_secret_is_refused(lstmq_env):
    lstmq_env(webhook_allow_private="true")
    with pytest.raises(ConfigError, match="LSTMQ_WEBHOOK_SECRET"):
        check_receivers(["http://127.0.0.1:9/hook"], get_settings())


def test_registering_a_loopback_receiver_without_the_allow_setting_is_refused(lstmq_env):
    lstmq_env(webhook_secret=SECRET)
    with pytest.raises(UnsafeReceiver, match="LSTMQ_WEBHOOK_ALLOW_PRIVATE"):
        check_receivers(["http://127.0.0.1:9/hook"], get_settings())


def test_the_body_is_the_same_bytes_on_every_attempt(webhook_env):
    with receiver(failures_per_event=1) as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_until_settled(webhook_env, utcnow())
    first, second = hook.got
    assert first.body == second.body and json.loads(first.body)["created_at"]


def recover_lost_batch(engine, app, job_id: str, now) -> None:
    """The reconciler finds the job's batch lost with its worker and sends it again."""
    [batch] = batches_of(engine, job_id)
    reconcile.recover(engine, app, reconcile.Lost(batch, reconcile.KILLED), now)


def test_a_recovery_streak_sends_job_stalled_once(webhook_env, celery_app):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    add_batch(webhook_env, job_id, ids, state="running", worker="gone", worker_pid=1)
    recover_lost_batch(webhook_env, celery_app, job_id, utcnow())
    recover_lost_batch(webhook_env, celery_app, job_id, utcnow() + timedelta(minutes=1))
    assert [d.event for d in deliveries(webhook_env, job_id)] == [events.JOB_STALLED]


def test_progress_ends_a_streak_and_the_next_recovery_sends_job_stalled_again(webhook_env, celery_app):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    add_batch(webhook_env, job_id, ids, state="running", worker="gone", worker_pid=1)
    recover_lost_batch(webhook_env, celery_app, job_id, utcnow())
    with session_scope(webhook_env) as session:
        set_document_status(session, ids[:1], {})
    recover_lost_batch(webhook_env, celery_app, job_id, utcnow() + timedelta(minutes=1))
    assert [d.event for d in deliveries(webhook_env, job_id)] == [events.JOB_STALLED, events.JOB_STALLED]


def test_the_docs_verification_snippet_accepts_a_delivered_signature_and_refuses_a_changed_body(webhook_env):
    page = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    snippet = page.split("**Verifying.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # the docs' own code, as a reader would paste it
    with receiver() as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_due(webhook_env, SECRET, True, utcnow())
    [got] = hook.got
    assert namespace["verified"](SECRET, got.headers[HEADER], got.body)
    assert not namespace["verified"](SECRET, got.headers[HEADER], got.body + b" ")


def test_a_receiver_that_keeps_failing_is_tried_for_at_least_a_day_then_given_up(webhook_env):
    job_id, ids = notified_job(webhook_env, "http://127.0.0.1:9/hook")
    run(webhook_env, job_id, ids, fail_on=None)
    tried = []

    def unavailable(url, body, headers, allow_private):
        tried.append(now)
        return Attempt(503, "try later", retry=True)

    now = utcnow()
    while (delivery := deliveries(webhook_env, job_id)[0]).state == events.PENDING:
        now = as_utc(delivery.next_attempt_at)  # the clock jumps to when it is due
        deliver_due(webhook_env, SECRET, True, now, post=unavailable)
    assert delivery.state == events.FAILED and tried[-1] - tried[0] >= timedelta(hours=24)
    assert all(later > earlier for earlier, later in zip(tried, tried[1:], strict=False))


def test_a_redirect_is_not_followed_and_is_given_up(webhook_env):
    with receiver(status=302) as hook:
        job_id, ids = notified_job(webhook_env, hook.url)
        run(webhook_env, job_id, ids, fail_on=None)
        deliver_until_settled(webhook_env, utcnow())
    [delivery] = deliveries(webhook_env, job_id)
    assert (len(hook.got), delivery.state, delivery.last_status) == (1, events.FAILED, 302)
    assert "not followed" in delivery.last_error


def test_a_refused_connection_is_retried_later(webhook_env):
    with receiver() as hook:
        url = hook.url
    job_id, ids = notified_job(webhook_env, url)  # its receiver has stopped: connections are refused
    run(webhook_env, job_id, ids, fail_on=None)
    now = utcnow()
    deliver_due(webhook_env, SECRET, True, now)
    [delivery] = deliveries(webhook_env, job_id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (events.PENDING, 1, None)
    assert as_utc(delivery.next_attempt_at) == now + timedelta(seconds=backoff_s(1))


def test_the_secret_never_shows_in_the_settings(webhook_env):
    settings = get_settings()
    assert settings.webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
