"""``lstmq.Client`` against a real ``lstmq serve`` with a worker behind it: submit a file, a
stream or records, follow, wait, read results as they stream, cancel and requeue, and every
failure as the ``lstmq.errors`` class the database path raises for the same mistake."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest

from lstmq import Client
from lstmq import client as client_module
from lstmq.api.tokens import create_token
from lstmq.apischema import Job, ResultRow, Submission
from lstmq.db.engine import session_scope
from lstmq.errors import (
    ConfigError,
    InputError,
    JobNotFound,
    ModelNotFound,
    PermissionDenied,
    ServiceUnavailable,
    WaitTimedOut,
)
from tests.support.api import GOOD, Api, bulk_classified_job, free_port, jsonl, running_api
from tests.support.inputs import corpus
from tests.support.jobs import add_job, add_results

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

LABELS = {"World", "Sports", "Business", "Sci/Tech"}
WAIT_S = 120  # a bound for wait(): tests wait on the job, and fail rather than hang
RECORDS_BYTES = 32 << 20  # records streamed by one submit in the memory test
RESULT_ROWS = 50_000  # rows read by one results() in the memory test
MEMORY_LIMIT = 8 << 20  # bytes of Python allocations either may peak at (the data is 4x more)


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    with running_api(request, tmp_path_factory.mktemp("api-client")) as running:
        running.stack.start_worker()
        yield running


def client_of(api: Api, scope: str = "submit") -> Client:
    return Client(f"http://127.0.0.1:{api.port}", api.tokens[scope])


@pytest.fixture(scope="module")
def submitted(api, tmp_path_factory) -> Submission:
    """A file of 12 documents and a bad line, submitted in batches of 5."""
    source = corpus(tmp_path_factory.mktemp("input") / "news.jsonl", 12, bad_lines=("{broken",))
    return client_of(api).submit(source, model="news", batch_size=5)


@pytest.fixture(scope="module")
def finished(api, submitted) -> Job:
    return client_of(api, "read").wait(submitted.id, timeout=WAIT_S)


# --- submitting ----------------------------------------------------------------------------------


def test_a_submitted_file_becomes_a_job_with_its_counts(submitted):
    assert (submitted.total, submitted.rejected, submitted.batches) == (12, 1, 3)


def test_a_submission_lists_its_first_rejected_lines(submitted):
    assert [line.line for line in submitted.first_rejected] == [13]


def test_records_are_sent_as_dicts_and_texts(api):
    created = client_of(api).submit([{"id": "a", "text": "Rates held."}, "The match ended 2-1."], model="news")
    assert (created.total, created.rejected) == (2, 0)


def test_a_binary_stream_is_sent_as_it_is_read(api):
    assert client_of(api).submit(io.BytesIO(GOOD), model="news").total == 2


def test_records_stream_without_being_held_in_memory(api):
    record = {"note": "x" * 1000}  # no text: read and rejected by the server, never stored

    def records() -> Iterator[dict]:
        for _ in range(RECORDS_BYTES // 1000):
            yield dict(record)
        yield {"text": "One good line."}

    tracemalloc.start()
    try:
        created = client_of(api).submit(records(), model="news")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert created.total == 1 and created.rejected > 30_000
    assert peak < MEMORY_LIMIT


def test_the_same_idempotency_key_returns_the_first_job(api):
    client = client_of(api)
    first = client.submit(io.BytesIO(GOOD), model="news", idempotency_key="client-retry")
    assert client.submit(io.BytesIO(GOOD), model="news", idempotency_key="client-retry").id == first.id


def test_every_rejected_line_can_be_read_back(api):
    created = client_of(api).submit([{"id": f"bad-{i}"} for i in range(25)] + ["A good line."], model="news")
    assert [line.line for line in client_of(api, "read").rejected(created.id).lines] == list(range(1, 26))


# --- following -----------------------------------------------------------------------------------


def test_status_has_the_counts_of_the_job(api, submitted):
    found = client_of(api, "read").status(submitted.id)
    assert (found.id, found.total, found.rejected, found.model) == (submitted.id, 12, 1, "news")


def test_wait_returns_the_finished_status(finished):
    assert (finished.state, finished.done, finished.pending) == ("finished", 12, 0)


def test_wait_gives_up_after_its_timeout(api):
    job_id, _ = add_job(api.stack.engine, ["never sent to a worker"])
    with pytest.raises(WaitTimedOut, match="still queued"):
        client_of(api, "read").wait(job_id, timeout=0)


def test_jobs_are_listed_newest_first_across_pages(api, monkeypatch):
    ids = [add_job(api.stack.engine, ["text"])[0] for _ in range(3)]
    monkeypatch.setattr(client_module, "MAX_PAGE_JOBS", 2)  # three jobs take two pages
    assert [job.id for job in client_of(api, "read").jobs(3)] == ids[::-1]


def test_models_lists_the_installed_models(api):
    assert "news" in {model.name for model in client_of(api, "read").models().models}


# --- results -------------------------------------------------------------------------------------


def test_results_stream_one_row_per_document(api, finished):
    with client_of(api, "read").results(finished.id) as rows:
        found = list(rows)
    assert [row.id for row in found] == [f"doc-{i}" for i in range(12)]
    assert {row.label for row in found} <= LABELS and {row.status for row in found} == {"done"}


def test_results_filter_by_label(api, finished):
    first = next(iter(client_of(api, "read").results(finished.id)))
    assert {row.label for row in client_of(api, "read").results(finished.id, label=first.label)} == {first.label}


def test_results_stream_in_constant_memory(api):
    job_id = bulk_classified_job(api, RESULT_ROWS)
    tracemalloc.start()
    try:
        count = sum(isinstance(row, ResultRow) for row in client_of(api, "read").results(job_id))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == RESULT_ROWS
    assert peak < MEMORY_LIMIT


# --- admin ---------------------------------------------------------------------------------------


def test_cancel_stops_a_job(api):
    job_id, _ = add_job(api.stack.engine, ["one", "two"])
    assert client_of(api, "admin").cancel(job_id).state == "cancelled"


def test_requeue_offers_what_has_no_result_again(api):
    job_id, _ = add_job(api.stack.engine, ["one", "two"], dispatched=True)  # nothing sent yet
    assert client_of(api, "admin").requeue(job_id, batch_size=1).docs == 2


def test_set_priority_changes_a_waiting_job(api):
    job_id, _ = add_job(api.stack.engine, ["one"], dispatched=True)  # stays pending: never sent
    assert client_of(api, "admin").set_priority(job_id, "high").priority == "high"
    assert client_of(api, "read").status(job_id).priority == "high"


def test_a_token_cannot_submit_above_its_maximum_priority(api, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n')
    with session_scope(api.stack.engine) as session:
        secret = create_token(session, "capped", "submit", max_priority="normal")
    with pytest.raises(PermissionDenied, match="token 'capped' may submit at priority normal or lower"):
        Client(f"http://127.0.0.1:{api.port}", secret).submit(path, model="news", priority="high")


# --- errors: the lstmq.errors class, one line ----------------------------------------------------


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_a_bad_token_is_a_config_error(api):
    client = Client(f"http://127.0.0.1:{api.port}", "lstmq_000000000000_" + "x" * 43)
    with pytest.raises(ConfigError) as error:
        client.jobs()
    assert "the API refused the API token: unknown or revoked token" == one_line(error)


def test_a_token_without_the_scope_is_a_config_error(api):
    with pytest.raises(ConfigError) as error:
        client_of(api, "read").cancel("0" * 32)
    assert "has scope read; this needs admin" in one_line(error)


def test_an_unknown_job_is_job_not_found(api):
    with pytest.raises(JobNotFound) as error:
        client_of(api, "read").status("no-such-job")
    assert one_line(error) == "no job 'no-such-job'"


def test_unknown_job_results_fail_before_the_first_row(api):
    with pytest.raises(JobNotFound):
        client_of(api, "read").results("no-such-job")


def test_bad_input_is_an_input_error(api):
    with pytest.raises(InputError) as error:
        client_of(api).submit(io.BytesIO(jsonl({"text": "fine"}, "{oops")), model="news", strict=True)
    assert "nothing submitted" in one_line(error) and "first at line 2: malformed JSON" in one_line(error)


def test_a_bad_parameter_is_an_input_error(api):
    with pytest.raises(InputError) as error:
        client_of(api).submit(io.BytesIO(GOOD), model="news", batch_size=0)
    assert "batch_size" in one_line(error)


def test_an_unknown_model_is_model_not_found(api):
    with pytest.raises(ModelNotFound) as error:
        client_of(api).submit(io.BytesIO(GOOD), model="nope")
    assert "unknown model 'nope'" in one_line(error)


def test_a_large_upload_refused_up_front_says_why(api, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_bytes(jsonl({"text": "x" * 1000}) * (RECORDS_BYTES // 1000))  # more than the sockets buffer
    with pytest.raises(ModelNotFound):
        client_of(api).submit(big, model="nope")


def test_an_api_nobody_listens_on_is_unavailable():
    with pytest.raises(ServiceUnavailable) as error:
        Client(f"http://127.0.0.1:{free_port()}", "token").status("x")
    assert "is unreachable" in one_line(error)


@pytest.mark.parametrize(
    "source, words",
    [
        ("{folder}", "a folder"),
        ("{folder}/missing.jsonl", "no such file"),
        ("{folder}/notes.doc", "pass format="),
        ("-", "sys.stdin.buffer"),
        (io.StringIO("text"), "binary mode"),
        (b'{"text": "x"}\n', "not bytes"),
        ([], "no records"),
        ([{"text": "fine"}, 42], "record 2: expected a dict or a str, got int"),
        ([{"text": object()}], "record 1: not JSON"),
    ],
)
def test_mistakes_in_what_is_submitted_are_one_line_input_errors(api, tmp_path, source, words):
    (tmp_path / "notes.doc").write_text("x\n")
    if isinstance(source, str):
        source = source.format(folder=tmp_path)
    with pytest.raises(InputError) as error:
        client_of(api).submit(source, model="news")
    assert words in one_line(error)


@pytest.mark.parametrize(
    "url, token, words",
    [
        ("ftp://example", "t", "expected http://"),
        ("http://127.0.0.1:1", "", "no API token"),
        ("http://127.0.0.1:1", "two words", "spaces or control characters"),
    ],
)
def test_a_bad_url_or_token_is_a_config_error(url, token, words):
    with pytest.raises(ConfigError) as error:
        Client(url, token)
    assert words in one_line(error)


# --- the environment -----------------------------------------------------------------------------


def test_from_env_reads_the_url_and_the_token(api, monkeypatch):
    monkeypatch.setenv("LSTMQ_API_URL", f"http://127.0.0.1:{api.port}")
    monkeypatch.setenv("LSTMQ_API_TOKEN", api.tokens["read"])
    assert Client.from_env().models().models


def test_from_env_names_the_variable_when_the_token_is_refused(api, monkeypatch):
    monkeypatch.setenv("LSTMQ_API_TOKEN", "lstmq_000000000000_" + "x" * 43)
    with pytest.raises(ConfigError, match="refused LSTMQ_API_TOKEN"):
        Client.from_env(f"http://127.0.0.1:{api.port}").jobs()


def test_from_env_is_none_without_a_url(monkeypatch):
    monkeypatch.delenv("LSTMQ_API_URL", raising=False)
    assert Client.from_env() is None


def test_results_rows_are_typed(api, finished):
    row = next(iter(client_of(api, "read").results(finished.id)))
    assert isinstance(row, ResultRow) and 0 <= row.score <= 1


def test_the_client_never_shows_its_token(api):
    assert api.tokens["read"] not in repr(client_of(api, "read"))


def test_a_results_stream_closed_early_stops_reading(api, finished):
    rows = client_of(api, "read").results(finished.id)
    next(rows)
    rows.close()
    assert list(rows) == []


def test_a_review_token_reviews_a_sample_and_reads_the_quality(api):
    job_id, ids = add_job(
        api.stack.engine, ["one", "two", "three"], dispatched=True
    )  # this module's worker must not classify them
    add_results(api.stack.engine, job_id, ids, [("World", 0.9), ("Sports", 0.8), ("World", 0.7)])
    reviewer = client_of(api, "review")
    sample = reviewer.review_sample(job_id, n=2)
    recorded = reviewer.review(job_id, {doc.id: doc.label for doc in sample.documents})
    assert (recorded.recorded, recorded.reviewed, recorded.total) == (2, 2, 3)
    found = reviewer.quality(job_id)
    assert (found.reviewed_random, found.agreement) == (2, 1.0)


def test_a_review_of_an_unknown_label_is_an_input_error(api):
    job_id, ids = add_job(api.stack.engine, ["one"], dispatched=True)
    add_results(api.stack.engine, job_id, ids, [("World", 0.9)])
    with pytest.raises(InputError, match="unknown labels Weather"):
        client_of(api, "review").review(job_id, {"0": "Weather"})
