"""Submitting: documents are recorded before they are queued, batched, never lost or doubled;
bad input is counted and reported; --strict and failures leave nothing behind."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import subprocess
import threading

import pytest
from sqlalchemy import event, func, select

from lstmq.batching import batch_size_for, chunked
from lstmq.contract import MAX_BATCH_DOCS, MAX_TEXT_CHARS
from lstmq.db.engine import session_scope
from lstmq.db.schema import DOC_DONE, DOC_FAILED, Document, Job, WorkerBeat, utcnow
from lstmq.db.transitions import cancel_job, mark_done, mark_failed
from lstmq.dispatch import send as dispatch_send
from lstmq.dispatch.send import FIRST_WINDOW_BATCHES, capacity
from lstmq.errors import InputError, ModelNotFound, ServiceUnavailable, SubmitCancelled, UserError
from lstmq.producer import submit as submit_module
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.records import Record, Rejected
from lstmq.sending import requeue
from lstmq.settings import get_settings
from lstmq.worker.heal import reconcile
from tests.support.dispatch import send_all
from tests.support.jobs import batches_of
from tests.support.processes import ROOT, lstmq_argv, run_lstmq, worker_env
from tests.support.queued import queued_doc_ids, queued_payloads
from tests.support.waiting import wait_until

# --- chunking: a pure function ---------------------------------------------------------


def test_chunks_close_at_the_document_limit():
    assert list(chunked(range(7), 3, 10**9, lambda _: 1)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_chunks_close_before_the_byte_limit_would_be_passed():
    sizes = [4, 4, 3, 9, 1]
    assert list(chunked(sizes, 100, 10, lambda n: n)) == [[4, 4], [3], [9, 1]]


def test_an_item_larger_than_the_byte_limit_travels_alone():
    assert list(chunked([1, 50, 1], 100, 10, lambda n: n)) == [[1], [50], [1]]


def test_chunking_keeps_every_item_once_in_order_within_both_limits():
    rng = random.Random(7)
    items = [rng.randint(1, 40) for _ in range(2000)]
    batches = list(chunked(items, 16, 100, lambda n: n))
    assert [n for batch in batches for n in batch] == items
    assert all(len(b) <= 16 and (sum(b) <= 100 or len(b) == 1) for b in batches)


def test_chunking_is_lazy():
    first = next(chunked(itertools.count(), 5, 10**9, lambda _: 1))
    assert first == [0, 1, 2, 3, 4]


def test_batch_size_defaults_to_settings_capped_and_refuses_out_of_range():
    assert batch_size_for(None, 256) == 256
    assert batch_size_for(None, 10**6) == MAX_BATCH_DOCS
    assert batch_size_for(MAX_BATCH_DOCS, 256) == MAX_BATCH_DOCS
    for bad in (0, -1, MAX_BATCH_DOCS + 1):
        with pytest.raises(InputError, match="--batch-size must be between 1 and"):
            batch_size_for(bad, 256)


# --- submitting ------------------------------------------------------------------------


def like(actual: str, expected: str) -> bool:
    """``actual == expected`` where each … in ``expected`` stands for any text (e.g. the
    shipped models, which come and go)."""
    return re.fullmatch(".*".join(re.escape(part) for part in expected.split("…")), actual) is not None


def recs(*texts: str, ids=None) -> list[Record]:
    ids = ids or [None] * len(texts)
    return [
        Record(text=t, external_id=i, source="in.jsonl", line_no=n + 1, record_no=n)
        for n, (t, i) in enumerate(zip(texts, ids, strict=True))
    ]


def submit(engine, app, items, **options):
    options.setdefault("task", "classify")
    options.setdefault("model", "tiny-clf")
    return submit_records(engine, app, items, **options)


@pytest.fixture
def live_worker(migrated_db):
    """A worker beating for the classify queue with one slot: room for FIRST_WINDOW_BATCHES."""
    with session_scope(migrated_db) as session:
        session.add(WorkerBeat(name="w@test", pid=1, queues=["lstmq.classify"], device="cpu", slots=1))
    assert capacity([WorkerBeat(queues=["lstmq.classify"], slots=1)])["lstmq.classify"] == FIRST_WINDOW_BATCHES


def documents(engine, job_id: str) -> list[Document]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Document).where(Document.job_id == job_id).order_by(Document.id)))


def row_counts(engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(Job)), session.scalar(
            select(func.count()).select_from(Document)
        )


def test_documents_are_recorded_then_sent_in_batches_of_the_batch_size(migrated_db, celery_app, models, redis_url):
    report = submit(migrated_db, celery_app, recs(*(f"doc {n}" for n in range(10))), batch_size=4)
    assert (report.total, report.rejected, report.batches) == (10, 0, 3)
    send_all(migrated_db, celery_app)
    payloads = queued_payloads(redis_url)
    assert [len(p["ids"]) for p in payloads] == [4, 4, 2]
    assert {(p["job_id"], p["model"]) for p in payloads} == {(report.job_id, "tiny-clf")}
    docs = documents(migrated_db, report.job_id)
    assert queued_doc_ids(redis_url) == [d.id for d in docs]
    assert [d.status for d in docs] == ["pending"] * 10
    with session_scope(migrated_db) as session:
        job = session.get(Job, report.job_id)
        assert (job.state, job.total, job.rejected, job.submitted_at is not None) == ("queued", 10, 0, True)


def test_database_keeps_the_full_text_while_the_message_names_the_document(migrated_db, celery_app, models, redis_url):
    long_text = "é" * (MAX_TEXT_CHARS + 500)
    report = submit(migrated_db, celery_app, recs(long_text))
    (doc,) = documents(migrated_db, report.job_id)
    assert doc.text == long_text
    assert doc.content_hash == hashlib.sha256(long_text.encode("utf-8")).hexdigest()
    send_all(migrated_db, celery_app)
    assert queued_payloads(redis_url)[0]["ids"] == [doc.id]


def test_external_id_is_the_id_field_else_the_record_number_across_the_submission(migrated_db, celery_app, models):
    items = [*recs("a", ids=["A"]), Rejected("in.jsonl", 2, "bad"), *recs("c", "d", ids=[None, "7"])]
    report = submit(migrated_db, celery_app, items)
    assert [d.external_id for d in documents(migrated_db, report.job_id)] == ["A", "2", "7"]


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "no-returning"])
@pytest.mark.parametrize("chunk_docs", [500, 2])
def test_a_duplicate_id_rejects_the_later_record(migrated_db, celery_app, models, monkeypatch, chunk_docs, returning):
    monkeypatch.setattr(submit_module, "INSERT_CHUNK_DOCS", chunk_docs)  # within and across chunks
    # without RETURNING (SQLite < 3.35) the ids already taken are looked up first
    monkeypatch.setattr(migrated_db.dialect, "insert_returning", returning)
    rejected = []
    items = recs("first", "other", "second", "third", ids=["x", "y", "x", "x"])
    report = submit(migrated_db, celery_app, items, on_reject=lambda r: rejected.append(str(r)))
    assert [str(r) for r in rejected] == ["in.jsonl:3: duplicate id 'x'", "in.jsonl:4: duplicate id 'x'"]
    assert [(d.external_id, d.text) for d in documents(migrated_db, report.job_id)] == [("x", "first"), ("y", "other")]
    assert (report.total, report.rejected) == (2, 2)


def test_every_record_read_is_either_recorded_or_rejected(migrated_db, celery_app, models, redis_url):
    items = [*recs("a", "b", "c"), Rejected("f", 4, "bad"), *recs("e", ids=["0"]), Rejected("f", 6, "bad")]
    report = submit(migrated_db, celery_app, items)
    assert report.total + report.rejected == len(items) == report.read
    assert (report.total, report.rejected) == (3, 3)  # "0" collides with the first record's number
    with session_scope(migrated_db) as session:
        job = session.get(Job, report.job_id)
        assert (job.total, job.rejected) == (3, 3)
    send_all(migrated_db, celery_app)
    assert len(queued_doc_ids(redis_url)) == 3


def test_strict_refuses_the_whole_input_and_leaves_nothing(migrated_db, celery_app, models, redis_url):
    items = [*recs(*(f"d{n}" for n in range(1200))), Rejected("in.jsonl", 1201, "bad")]
    with pytest.raises(InputError, match=r"1 of 1201 records rejected; nothing submitted \(--strict\)"):
        submit(migrated_db, celery_app, items, strict=True)
    assert row_counts(migrated_db) == (0, 0)
    assert queued_payloads(redis_url) == []


def test_an_input_without_good_records_is_refused(migrated_db, celery_app, models, redis_url):
    with pytest.raises(InputError, match=r"no good records \(1 rejected\); nothing submitted"):
        submit(migrated_db, celery_app, [Rejected("in.jsonl", 1, "bad")])
    assert row_counts(migrated_db) == (0, 0)


def test_an_input_failing_midway_leaves_nothing_in_the_database(
    migrated_db, celery_app, models, redis_url, live_worker
):
    def items():
        yield from recs(*(f"d{n}" for n in range(700)))
        raise InputError("in.jsonl.gz: unreadable (corrupt)")

    with pytest.raises(InputError, match="unreadable"):
        submit(migrated_db, celery_app, items(), batch_size=100)
    assert row_counts(migrated_db) == (0, 0)
    # The first window, sent before the failure, names the deleted job, which workers skip.
    payloads = queued_payloads(redis_url)
    assert len(payloads) == FIRST_WINDOW_BATCHES and len({payload["job_id"] for payload in payloads}) == 1


def test_a_first_window_is_sent_while_the_input_is_still_being_read(
    migrated_db, celery_app, models, redis_url, live_worker
):
    seen_while_reading = []

    def items():
        yield from recs(*(f"d{n}" for n in range(600)))  # past one insert chunk (500 documents)
        seen_while_reading.append(len(queued_payloads(redis_url)))
        yield from recs(*(f"e{n}" for n in range(50)))

    report = submit(migrated_db, celery_app, items(), batch_size=100)
    assert seen_while_reading == [FIRST_WINDOW_BATCHES]  # workers start before the input ends
    assert len(queued_payloads(redis_url)) == FIRST_WINDOW_BATCHES  # the rest is the dispatcher's
    send_all(migrated_db, celery_app)
    sent = [doc_id for payload in queued_payloads(redis_url) for doc_id in payload["ids"]]
    assert sorted(sent) == [doc.id for doc in documents(migrated_db, report.job_id)]  # each once


def test_without_a_live_worker_a_submit_puts_nothing_in_the_broker(migrated_db, celery_app, models, redis_url):
    report = submit(migrated_db, celery_app, recs(*(f"d{n}" for n in range(600))), batch_size=100)
    assert queued_payloads(redis_url) == []
    assert job_row(migrated_db, report.job_id).state == "queued"


def test_strict_sends_nothing_until_the_whole_input_validated(migrated_db, celery_app, models, redis_url, live_worker):
    seen_while_reading = []

    def items():
        yield from recs(*(f"d{n}" for n in range(600)))
        seen_while_reading.append(len(queued_payloads(redis_url)))

    submit(migrated_db, celery_app, items(), batch_size=100, strict=True)
    assert seen_while_reading == [0]
    assert len(queued_payloads(redis_url)) == FIRST_WINDOW_BATCHES


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"task": "translate"}, InputError, "unknown task 'translate' (expected classify, render)"),
        ({"model": "nope"}, ModelNotFound, "unknown model 'nope'; installed: …tiny-clf, tiny-gen…"),
        ({"model": "tiny-gen"}, ModelNotFound, "model 'tiny-gen' is a generator; task classify needs a classifier"),
        ({"batch_size": 0}, InputError, "--batch-size must be between 1 and 2048, got 0"),
    ],
)
def test_bad_options_are_refused_before_anything_is_recorded(migrated_db, celery_app, models, options, error, message):
    with pytest.raises(error) as info:
        submit(migrated_db, celery_app, recs("a"), **options)
    assert like(str(info.value), message)
    assert row_counts(migrated_db) == (0, 0)


def test_unreachable_broker_is_refused_before_reading(migrated_db, models, lstmq_env, monkeypatch):
    monkeypatch.setenv("LSTMQ_BROKER_URL", "redis://127.0.0.1:1/0")
    from lstmq.settings import get_settings

    get_settings.cache_clear()
    consumed = []
    items = (consumed.append(r) or r for r in recs("a"))
    with pytest.raises(ServiceUnavailable, match="broker redis://127.0.0.1:1/0 unreachable"):
        submit(migrated_db, make_celery(), items)
    assert consumed == [] and row_counts(migrated_db) == (0, 0)


def test_render_jobs_go_to_the_render_queue(migrated_db, celery_app, models, redis_url):
    report = submit(migrated_db, celery_app, recs("a red circle"), task="render", model="tiny-gen")
    send_all(migrated_db, celery_app)
    assert queued_doc_ids(redis_url, "lstmq.render") == [documents(migrated_db, report.job_id)[0].id]
    assert queued_payloads(redis_url, "lstmq.classify") == []


# --- requeue -----------------------------------------------------------------------------


def set_status(engine, doc_ids, status):
    """As a worker sets it: through lstmq.db.transitions, so the job's counters move too."""
    with session_scope(engine) as session:
        if status == DOC_FAILED:
            mark_failed(session, dict.fromkeys(doc_ids, "failed"), utcnow())
        else:
            mark_done(session, doc_ids, utcnow())


def test_requeue_sends_only_documents_without_a_result(migrated_db, celery_app, models, redis_url):
    import redis

    report = submit(migrated_db, celery_app, recs(*(f"d{n}" for n in range(9))), batch_size=2)
    ids = [d.id for d in documents(migrated_db, report.job_id)]
    set_status(migrated_db, ids[:3], DOC_DONE)
    set_status(migrated_db, ids[3:4], DOC_FAILED)
    redis.Redis.from_url(redis_url).flushdb()  # as if Redis lost everything
    assert requeue(migrated_db, report.job_id) == 5
    assert send_all(migrated_db, celery_app) == 3
    assert queued_doc_ids(redis_url) == ids[4:]


def test_sending_pages_through_more_documents_than_one_page(migrated_db, celery_app, models, redis_url):
    report = submit(migrated_db, celery_app, recs(*(f"d{n}" for n in range(50))), batch_size=3)
    assert report.batches == send_all(migrated_db, celery_app) == 17
    assert queued_doc_ids(redis_url) == [d.id for d in documents(migrated_db, report.job_id)]
    assert requeue(migrated_db, report.job_id, batch_size=50) == 50
    assert send_all(migrated_db, celery_app) == 1  # in the job's new batch size


def test_requeue_refuses_a_cancelled_job(migrated_db, celery_app, models):
    report = submit(migrated_db, celery_app, recs("a"))
    with session_scope(migrated_db) as session:
        session.get(Job, report.job_id).state = "cancelled"
    with pytest.raises(UserError, match=f"job {report.job_id} is cancelled; not requeued"):
        requeue(migrated_db, report.job_id)


# --- the command line ------------------------------------------------------------------

sqlite_only = pytest.mark.parametrize(
    "db_url", ["sqlite"], indirect=True
)  # subprocesses are slow; SQL is covered above


@sqlite_only
def test_cli_prints_bad_records_on_stderr_and_the_job_id_last_on_stdout(
    migrated_db, celery_app, models, redis_url, tmp_path
):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "good", "id": "a"}\n{"text": 1}\n{"text": "fine"}\n')
    proc = run_lstmq("submit", str(path), "--model", "tiny-clf", "--batch-size", "1")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.decode().splitlines()[-1]
    stderr = proc.stderr.decode().splitlines()
    assert stderr[0] == f"{path}:2: text field 'text' is not a string"
    assert stderr[-1] == f"job {job_id}: 2 documents queued in 2 batches, 1 rejected"
    assert [d.external_id for d in documents(migrated_db, job_id)] == ["a", "2"]
    assert send_all(migrated_db, celery_app) == len(queued_payloads(redis_url)) == 2


@sqlite_only
def test_cli_reads_stdin(migrated_db, celery_app, models):
    proc = run_lstmq("submit", "-", "--model", "tiny-clf", "--format", "txt", stdin=b"one\ntwo\n")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.decode().strip()
    assert [(d.text, d.source) for d in documents(migrated_db, job_id)] == [("one", "<stdin>"), ("two", "<stdin>")]


@sqlite_only
@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.jsonl", "--model", "tiny-clf"], "error: missing.jsonl: no such file or directory"),
        (["{input}", "--model", "nope"], "error: unknown model 'nope'; installed: …tiny-clf, tiny-gen…"),
        (
            ["{input}", "--model", "tiny-clf", "--task", "summarize"],
            "error: unknown task 'summarize' (expected classify, render)",
        ),
        (
            ["{input}", "--model", "tiny-clf", "--batch-size", "lots"],
            "error: --batch-size must be an integer, got 'lots'",
        ),
        (
            ["{input}", "--model", "tiny-clf", "--batch-size", "99999"],
            "error: --batch-size must be between 1 and 2048, got 99999",
        ),
        (["{input}"], "error: --model is required (see `lstmq models`)"),
        (["{binary}", "--model", "tiny-clf"], "error: {binary}: binary file, not text"),
        (["{bad}", "--model", "tiny-clf", "--strict"], "error: 1 of 2 records rejected; nothing submitted (--strict)"),
    ],
)
def test_cli_mistakes_are_one_line_and_leave_nothing(migrated_db, celery_app, models, tmp_path, args, message):
    files = {"input": tmp_path / "in.jsonl", "binary": tmp_path / "model.bin.jsonl", "bad": tmp_path / "bad.jsonl"}
    files["input"].write_text('{"text": "x"}\n')
    files["binary"].write_bytes(b"\x00" * 64)
    files["bad"].write_text('{"text": "x"}\n{"text": ""}\n')
    names = {key: str(path) for key, path in files.items()}
    proc = run_lstmq("submit", *(a.format(**names) for a in args))
    assert proc.returncode == 2
    assert like(proc.stderr.decode().splitlines()[-1], message.format(**names))
    assert "Traceback" not in proc.stderr.decode() and proc.stdout == b""
    assert row_counts(migrated_db) == (0, 0)


def _complete_when_recorded(engine, failed: int) -> None:
    """Play the worker: once documents appear, mark them done (the first ``failed`` failed)."""
    import time

    for _ in range(600):
        with session_scope(engine) as session:
            ids = session.scalars(
                select(Document.id)
                .join(Job, Job.id == Document.job_id)
                .where(Job.state == "queued")
                .order_by(Document.id)
            ).all()
        if ids:
            set_status(engine, ids[:failed], DOC_FAILED)
            set_status(engine, ids[failed:], DOC_DONE)
            return
        time.sleep(0.1)


@sqlite_only
@pytest.mark.parametrize("failed, code", [(0, 0), (1, 3)])
def test_cli_wait_returns_when_the_job_is_finished(migrated_db, celery_app, models, tmp_path, failed, code):
    import threading

    path = tmp_path / "in.txt"
    path.write_text("a\nb\nc\n")
    worker = threading.Thread(target=_complete_when_recorded, args=(migrated_db, failed))
    worker.start()
    proc = run_lstmq("submit", str(path), "--model", "tiny-clf", "--wait")
    worker.join()
    assert proc.returncode == code, proc.stderr
    job_id = proc.stdout.decode().splitlines()[-1]
    if failed:
        assert proc.stderr.decode().splitlines()[-1] == (
            f"error: job {job_id} finished with 1 failed and 0 pending documents "
            f"(see `lstmq results {job_id} --failed`)"
        )


def test_requeue_refuses_a_job_whose_input_is_still_being_recorded(migrated_db, celery_app, models, redis_url):
    seen = {}

    def items():
        yield from recs("a", "b")
        with session_scope(migrated_db) as session:  # mid-submission, as another process sees it
            job_id = session.scalars(select(Job.id)).one()
        with pytest.raises(UserError, match="still being recorded"):
            requeue(migrated_db, job_id)
        seen["job"] = job_id

    report = submit(migrated_db, celery_app, items())
    assert report.job_id == seen["job"] and report.total == 2
    send_all(migrated_db, celery_app)
    assert queued_doc_ids(redis_url) == [d.id for d in documents(migrated_db, report.job_id)]
    requeue(migrated_db, report.job_id)  # allowed once recorded


def test_a_broker_failing_while_sending_leaves_the_job_queued_and_its_batches_unsent(
    migrated_db, celery_app, models, monkeypatch, live_worker
):
    def broken(*_args):
        raise ServiceUnavailable("broker redis://x unreachable: down")

    monkeypatch.setattr(dispatch_send, "send_batch", broken)
    report = submit(migrated_db, celery_app, recs("a"))
    assert job_row(migrated_db, report.job_id).state == "queued"
    # The batch is recorded but marked unpublished: the reconciler sends it once the broker is back.
    assert [b.sent_at for b in batches_of(migrated_db, report.job_id)] == [None]


# --- a submit that is interrupted, cancelled, or dies ----------------------------------


def job_row(engine, job_id: str) -> Job:
    with session_scope(engine) as session:
        return session.get(Job, job_id)


def test_a_job_cancelled_while_it_is_recorded_stops_the_submit_and_stays_cancelled(
    migrated_db, celery_app, models, redis_url
):
    def items():
        yield from recs(*(f"d{n}" for n in range(600)))  # the first chunk (500) is recorded
        with session_scope(migrated_db) as session:  # `lstmq cancel`, from another process
            cancel_job(session, session.scalars(select(Job.id)).one())
        yield from recs(*(f"e{n}" for n in range(3000)))

    # Chunks of 500, then 1,000: the second chunk is recorded, and the submit stops after it.
    with pytest.raises(SubmitCancelled, match="cancelled while it was being submitted, after 1,500 documents"):
        submit(migrated_db, celery_app, items(), batch_size=100)
    with session_scope(migrated_db) as session:
        job = session.scalars(select(Job)).one()
        recorded = session.scalar(select(func.count()).select_from(Document))
    assert (job.state, job.total, recorded) == ("cancelled", 1500, 1500)  # counted as recorded


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL records with COPY
def test_an_interrupt_inside_a_statement_still_deletes_the_job(migrated_db, celery_app, models):
    """Ctrl-C lands inside the database driver's call: on SQLite, the interrupted cursor kept the
    write lock and the job was left 'submitting' forever."""
    inserts = []

    @event.listens_for(migrated_db, "do_executemany")
    def interrupt_the_second_insert(cursor, statement, parameters, context):
        if statement.startswith("INSERT INTO documents"):
            inserts.append(statement)
            if len(inserts) == 2:
                cursor.executemany(statement, parameters)
                raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            submit(migrated_db, celery_app, recs(*(f"d{n}" for n in range(3000))), batch_size=100)
    finally:
        event.remove(migrated_db, "do_executemany", interrupt_the_second_insert)
    assert len(inserts) == 2 and row_counts(migrated_db) == (0, 0)


def test_a_submit_waiting_on_its_input_keeps_showing_it_is_alive(migrated_db, celery_app, models, monkeypatch):
    monkeypatch.setenv("LSTMQ_STALL_AFTER_S", "4")  # a heartbeat every second
    get_settings.cache_clear()
    beats = []

    def progressed_at(job_id: str):
        with session_scope(migrated_db) as session:
            return session.get(Job, job_id).progressed_at

    def items():  # a slow stdin: one record, then nothing for a while
        yield from recs("first")
        with session_scope(migrated_db) as session:
            job_id = session.scalars(select(Job.id)).one()
        beats.append(wait_until(lambda: progressed_at(job_id), 30, "a first beat"))
        beats.append(wait_until(lambda: (progressed_at(job_id) or beats[0]) > beats[0], 30, "a later beat"))
        yield from recs("second")

    report = submit(migrated_db, celery_app, items())
    assert report.total == 2 and len(beats) == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # subprocesses are slow; the path is the same
def test_a_terminated_submit_deletes_the_job_it_was_recording(migrated_db, celery_app, models):
    lines = b"".join(b'{"text": "doc %d"}\n' % n for n in range(600))  # one chunk (500) recorded, then a wait
    proc = subprocess.Popen(
        lstmq_argv("submit", "-", "--model", "tiny-clf"),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=worker_env(),
        cwd=ROOT,
    )
    try:
        proc.stdin.write(lines)
        proc.stdin.flush()
        wait_until(lambda: row_counts(migrated_db)[1] >= 500, 60, "the first chunk recorded")
        proc.terminate()  # SIGTERM while it waits for more input
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
        proc.stdin.close()
    assert proc.stderr.read().decode().strip().endswith("terminated")
    assert row_counts(migrated_db) == (0, 0)


def test_a_broker_outage_while_recording_delays_the_sends_and_loses_nothing(
    migrated_db, celery_app, models, redis_url, monkeypatch, live_worker
):
    real, up, failed = dispatch_send.send_batch, threading.Event(), []

    def down_until_up(*args, **kwargs):
        if not up.is_set():
            failed.append(1)
            raise ServiceUnavailable("broker redis://x unreachable: down")
        return real(*args, **kwargs)

    def items():
        yield from recs(*(f"d{n}" for n in range(600)))  # the first chunk (500) is recorded...
        assert failed  # ...and its first window failed to publish
        yield from recs(*(f"e{n}" for n in range(1400)))
        up.set()  # the broker is back before the input ends

    monkeypatch.setattr(dispatch_send, "send_batch", down_until_up)
    report = submit(migrated_db, celery_app, items(), batch_size=100)
    assert report.total == 2000 and job_row(migrated_db, report.job_id).state == "queued"
    lost = reconcile.lost_batches(migrated_db, [], get_settings(), utcnow(), lambda queue: 0)
    assert {item.why for item in lost} == {reconcile.UNSENT}
    for item in lost:
        reconcile.recover(migrated_db, celery_app, item, utcnow())
    send_all(migrated_db, celery_app)
    assert sorted(queued_doc_ids(redis_url)) == [doc.id for doc in documents(migrated_db, report.job_id)]
