"""End to end: a corpus submitted again to a real worker is done from the first run's results
(each a row of its own, of the current model version); with reuse off the model runs again.
On the embedded setup (SQLite + filesystem broker) and on PostgreSQL + Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Classification, Document, Job
from lstmq.dispatch.reuse import current_version
from lstmq.producer.submit import submit_records
from lstmq.readers.sources import read_sources, resolve_sources
from tests.support.inputs import corpus
from tests.support.stacks import BACKENDS, open_stack

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast
DOCS = 60


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory):
    with open_stack(request, request.param, tmp_path_factory.mktemp(request.param)) as stack:
        stack.start_worker()
        yield stack


@pytest.fixture(scope="module")
def first(stack, tmp_path_factory):
    """The corpus file, classified once."""
    path = corpus(tmp_path_factory.mktemp("input") / "news.jsonl", DOCS)
    stack.wait_finished(stack.submit(path).job_id)
    return path


def again(stack, path, reuse: bool = True) -> str:
    items = read_sources(resolve_sources([str(path)]))
    report = submit_records(stack.engine, stack.app, items, task="classify", model="news", batch_size=20, reuse=reuse)
    stack.wait_finished(report.job_id)
    return report.job_id


def counts(stack, job_id: str) -> tuple[str, int, int]:
    with session_scope(stack.engine) as session:
        job = session.get(Job, job_id)
        return job.state, job.done_count, job.reused_count


def versions(stack, job_id: str) -> list[str]:
    with session_scope(stack.engine) as session:
        stmt = select(Classification.model_version).join(Document).where(Document.job_id == job_id)
        return list(session.scalars(stmt))


def test_a_corpus_submitted_again_is_done_by_reuse_alone(stack, first):
    assert counts(stack, again(stack, first)) == ("finished", DOCS, DOCS)


def test_each_reused_result_is_a_row_of_the_current_model_version(stack, first):
    assert versions(stack, again(stack, first)) == [current_version("news")] * DOCS


def test_with_reuse_off_the_model_runs_on_every_document(stack, first):
    assert counts(stack, again(stack, first, reuse=False)) == ("finished", DOCS, 0)
