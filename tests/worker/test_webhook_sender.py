"""The workers' webhook thread: a pass delivers what is due; without a secret it sends nothing."""

from __future__ import annotations

from lstmq.settings import get_settings
from lstmq.worker.webhooks import WebhookSender
from tests.core.test_job_counters import TEXTS, run
from tests.support.webhooks import notified_job, receiver


def test_a_pass_of_the_worker_thread_delivers_a_due_event(webhook_env):
    with receiver() as hook:
        job_id, ids = notified_job(webhook_env, hook.url, TEXTS)
        run(webhook_env, job_id, ids, fail_on=None)
        assert WebhookSender().tick() == 1
    assert [r.event["type"] for r in hook.accepted()] == ["job.finished"]


def test_without_a_secret_the_thread_sends_nothing(webhook_env, monkeypatch):
    with receiver() as hook:
        job_id, ids = notified_job(webhook_env, hook.url, TEXTS)
        run(webhook_env, job_id, ids, fail_on=None)
        monkeypatch.delenv("LSTMQ_WEBHOOK_SECRET")
        get_settings.cache_clear()
        sender = WebhookSender()
        sender.start()
        sender.join(timeout=10)
        assert not sender.is_alive()
    assert hook.got == []
