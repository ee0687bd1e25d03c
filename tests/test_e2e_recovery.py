"""A worker killed with SIGKILL in the middle of a job: a new worker (plus `requeue` where the
broker cannot redeliver) finishes it with exactly one result per document."""

from __future__ import annotations

import pytest

from producer.sending import requeue
from tests.helpers_worker import BACKENDS, corpus, open_stack, results_per_document, status_counts, wait_until


@pytest.fixture(params=BACKENDS)
def stack(request, tmp_path):
    with open_stack(request, request.param, tmp_path / "home") as stack:
        yield stack


def test_a_worker_killed_mid_job_is_replaced_and_no_document_is_lost_or_doubled(stack, tmp_path):
    first = stack.start_worker()
    report = stack.submit(corpus(tmp_path / "in.jsonl", 200), batch_size=5)
    wait_until(lambda: status_counts(stack.engine, report.job_id).get("done", 0) > 0, 60, 0.02, "first batch")
    first.kill()  # SIGKILL: no ack, no clean-up
    assert status_counts(stack.engine, report.job_id).get("pending", 0) > 0, "killed too late to test recovery"

    if stack.name == "services":
        # Redis hands the killed worker's unacked batch to the next worker once the visibility
        # timeout (shortened here) has passed; the other batches are still queued. No requeue.
        stack.start_worker(visibility_timeout_s="1")
    else:
        # The filesystem broker deleted the message the dead worker had taken: requeue
        # re-sends every pending document (copies of still-queued ones are skipped as done).
        stack.start_worker()
        requeue(stack.engine, stack.app, report.job_id, 5)
    stack.wait_finished(report.job_id)

    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 200 and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, report.job_id) == {"done": 200}
