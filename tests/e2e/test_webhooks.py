"""A real worker delivers a job's webhook: submit with a receiver on loopback, and the worker's
delivery loop POSTs job.finished, signed, with the finished job in it."""

from __future__ import annotations

import pytest

from lstmq.producer.submit import submit_records
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.settings import get_settings
from lstmq.webhooks.signing import HEADER, verify
from tests.support.inputs import corpus
from tests.support.stacks import BACKENDS, JOB_TIMEOUT_S, open_stack
from tests.support.waiting import wait_until
from tests.support.webhooks import SECRET, receiver

pytestmark = pytest.mark.processes  # starts lstmq workers: left out by make test-fast


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_delivers_job_finished_to_the_jobs_receiver(request, tmp_path, monkeypatch, backend):
    settings = {"webhook_secret": SECRET, "webhook_allow_private": "true"}
    with open_stack(request, backend, tmp_path / backend) as stack, receiver() as hook:
        for key, value in settings.items():
            monkeypatch.setenv(f"LSTMQ_{key.upper()}", value)
        get_settings.cache_clear()
        stack.start_worker(**settings)
        path = corpus(tmp_path / "in.jsonl", 30)
        items = read_sources(resolve_sources([str(path)]))
        report = submit_records(stack.engine, stack.app, items, task="classify", model="news", notify=[hook.url])
        wait_until(hook.accepted, JOB_TIMEOUT_S, lambda: f"a webhook delivery{stack.logs()}")
    [got] = hook.got
    assert got.event["type"] == "job.finished" and got.event["job"]["id"] == report.job_id
    assert (got.event["job"]["state"], got.event["job"]["done"]) == ("finished", 30)
    assert verify(SECRET, got.headers[HEADER], got.body, now=int(got.headers[HEADER].split(",")[0][2:]))
