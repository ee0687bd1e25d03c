"""Status, results, jobs and cancel read the database as it stands, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lstmq.db.engine import session_scope
from lstmq.db.queries import find_job, get_job, job_status, list_jobs, result_rows
from lstmq.db.schema import Classification, Document, Image, Job, as_utc
from lstmq.db.transitions import cancel_job, mark_done, mark_failed
from lstmq.errors import InputError, JobNotFound
from lstmq.producer import output
from lstmq.producer.output import job_summary
from tests.support.processes import run_lstmq

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STATUS_KEYS = {
    "id",
    "state",
    "task",
    "model",
    "total",
    "done",
    "reused",
    "failed",
    "pending",
    "rejected",
    "docs_per_s",
    "eta_s",
    "created_at",
    "submitted_at",
    "finished_at",
    "schedule",
    "note",
    "priority",
    "owner",
    "in_flight",
    "waiting",
}


def make_job(
    engine, n_docs: int, task: str = "classify", model: str = "clf", created=T0, rejected=0
) -> tuple[str, list[int]]:
    job_id = uuid.uuid4().hex
    with session_scope(engine) as session:
        session.add(
            Job(
                id=job_id,
                task=task,
                model=model,
                state="queued",
                total=n_docs,
                rejected=rejected,
                created_at=created,
                submitted_at=created + timedelta(seconds=1),
            )
        )
        session.flush()  # no ORM relationship orders the inserts, so the job goes first
        docs = [
            Document(
                job_id=job_id,
                external_id=f"e{n}",
                source="in.jsonl",
                record_no=n,
                line_no=n + 1,
                content_hash="0" * 64,
                text=f"text {n}",
                updated_at=created,
            )
            for n in range(n_docs)
        ]
        session.add_all(docs)
        session.flush()
        return job_id, [d.id for d in docs]


def finish(
    engine,
    doc_id: int,
    label: str | None = None,
    version: str = "v1",
    at=T0,
    error: str | None = None,
    model: str = "clf",
    image: str | None = None,
) -> None:
    """What a worker writes: a result row and the document's status (its job's counters with it)."""
    with session_scope(engine) as session:
        if error:
            mark_failed(session, {doc_id: error}, at)
        else:
            mark_done(session, [doc_id], at)
        if label is not None:
            session.add(
                Classification(
                    document_id=doc_id,
                    model=model,
                    model_version=version,
                    label=label,
                    score=0.9,
                    probs={label: 0.9},
                    created_at=at,
                    updated_at=at,
                )
            )
        if image is not None:
            session.add(
                Image(
                    document_id=doc_id,
                    model=model,
                    model_version=version,
                    path=image,
                    width=64,
                    height=64,
                    sha256="0" * 64,
                    created_at=at,
                    updated_at=at,
                )
            )


def status_of(engine, job_id: str, now=None):
    with session_scope(engine) as session:
        return job_status(session, job_id, now=now)


def rows_of(engine, job_id: str, **filters) -> list[dict]:
    with session_scope(engine) as session:
        return list(result_rows(session, get_job(session, job_id), **filters))


def test_status_counts_documents_and_estimates_rate_and_eta(migrated_db):
    job_id, ids = make_job(migrated_db, 10, rejected=2)
    for doc_id in ids[:3]:
        finish(migrated_db, doc_id, label="pos")
    finish(migrated_db, ids[3], error="too long")
    status = status_of(migrated_db, job_id, now=T0 + timedelta(seconds=5))  # 4 s after submission
    assert set(status.as_dict()) == STATUS_KEYS
    assert (status.state, status.total, status.done, status.failed, status.pending, status.rejected) == (
        "queued",
        10,
        3,
        1,
        6,
        2,
    )
    assert status.docs_per_s == pytest.approx(1.0)
    assert status.eta_s == pytest.approx(6.0)


def test_nothing_processed_yet_means_no_rate_and_no_eta(migrated_db):
    job_id, _ = make_job(migrated_db, 3)
    status = status_of(migrated_db, job_id)
    assert (status.docs_per_s, status.eta_s, status.pending) == (None, None, 3)


def test_a_queued_job_with_nothing_pending_reads_finished_when_its_last_result_came(migrated_db):
    job_id, ids = make_job(migrated_db, 2)
    finish(migrated_db, ids[0], label="pos", at=T0 + timedelta(seconds=3))
    finish(migrated_db, ids[1], label="neg", at=T0 + timedelta(seconds=9))
    status = status_of(migrated_db, job_id, now=T0 + timedelta(hours=5))
    assert (status.state, status.eta_s) == ("finished", 0.0)
    assert status.finished_at == T0 + timedelta(seconds=9)
    assert status.docs_per_s == pytest.approx(2 / 8)
    with session_scope(migrated_db) as session:  # stored, so later readers agree
        stored = session.get(Job, job_id).finished_at
    assert stored.replace(tzinfo=UTC) == T0 + timedelta(seconds=9)


def test_cancel_keeps_pending_documents_pending(migrated_db):
    job_id, ids = make_job(migrated_db, 3)
    finish(migrated_db, ids[0], label="pos")
    with session_scope(migrated_db) as session:
        cancelled = cancel_job(session, job_id)
    assert (cancelled.state, cancelled.pending, cancelled.eta_s) == ("cancelled", 2, None)
    assert status_of(migrated_db, job_id).state == "cancelled"
    assert [r["status"] for r in rows_of(migrated_db, job_id)] == ["done", "pending", "pending"]


def test_cancelling_a_finished_job_leaves_it_finished(migrated_db):
    job_id, ids = make_job(migrated_db, 1)
    finish(migrated_db, ids[0], label="pos")
    with session_scope(migrated_db) as session:
        assert cancel_job(session, job_id).state == "finished"
    assert status_of(migrated_db, job_id).state == "finished"


def test_unknown_job_is_one_clear_error(migrated_db):
    with pytest.raises(JobNotFound, match="^no job 'nope'$"):
        status_of(migrated_db, "nope")


def test_results_have_one_row_per_document_with_status_and_error(migrated_db):
    job_id, ids = make_job(migrated_db, 3)
    finish(migrated_db, ids[0], label="pos")
    finish(migrated_db, ids[1], error="empty after tokenizing")
    assert rows_of(migrated_db, job_id) == [
        {
            "id": "e0",
            "label": "pos",
            "score": 0.9,
            "model": "clf",
            "model_version": "v1",
            "status": "done",
            "error": None,
        },
        {
            "id": "e1",
            "label": None,
            "score": None,
            "model": "clf",
            "model_version": None,
            "status": "failed",
            "error": "empty after tokenizing",
        },
        {
            "id": "e2",
            "label": None,
            "score": None,
            "model": "clf",
            "model_version": None,
            "status": "pending",
            "error": None,
        },
    ]


def test_results_filter_by_label_and_by_failure(migrated_db):
    job_id, ids = make_job(migrated_db, 4)
    finish(migrated_db, ids[0], label="pos")
    finish(migrated_db, ids[1], label="neg")
    finish(migrated_db, ids[2], label="pos")
    finish(migrated_db, ids[3], error="boom")
    assert [r["id"] for r in rows_of(migrated_db, job_id, label="pos")] == ["e0", "e2"]
    assert [r["id"] for r in rows_of(migrated_db, job_id, failed_only=True)] == ["e3"]


def test_results_show_the_latest_model_version_once_per_document(migrated_db):
    job_id, ids = make_job(migrated_db, 1)
    finish(migrated_db, ids[0], label="neg", version="old", at=T0)
    finish(migrated_db, ids[0], label="pos", version="new", at=T0 + timedelta(minutes=1))
    finish(migrated_db, ids[0], label="other", version="x", model="another-model", at=T0 + timedelta(hours=1))
    (row,) = rows_of(migrated_db, job_id)
    assert (row["label"], row["model_version"]) == ("pos", "new")


def test_render_results_carry_the_image_path(migrated_db):
    job_id, ids = make_job(migrated_db, 2, task="render", model="gen")
    finish(migrated_db, ids[0], model="gen", image="ab/cd.png")
    rows = rows_of(migrated_db, job_id)
    assert [(r["image_path"], r["status"], r["label"]) for r in rows] == [
        ("ab/cd.png", "done", None),
        (None, "pending", None),
    ]
    with pytest.raises(InputError, match="--label applies to classify jobs"):
        rows_of(migrated_db, job_id, label="pos")


def test_jobs_lists_newest_first_with_their_counts(migrated_db):
    old, _ = make_job(migrated_db, 2, created=T0)
    new, ids = make_job(migrated_db, 3, created=T0 + timedelta(hours=1))
    finish(migrated_db, ids[0], label="pos")
    with session_scope(migrated_db) as session:
        summaries = [job_summary(s) for s in list_jobs(session)]
        assert [s.id for s in list_jobs(session, limit=1)] == [new]
    assert [s["id"] for s in summaries] == [new, old]
    assert summaries[0] == {
        "id": new,
        "state": "queued",
        "task": "classify",
        "model": "clf",
        "total": 3,
        "done": 1,
        "reused": 0,
        "failed": 0,
        "pending": 2,
        "rejected": 0,
        "created_at": (T0 + timedelta(hours=1)).isoformat(),
        "schedule": None,
        "priority": "normal",
        "owner": "",
    }


# --- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # subprocesses are slow; SQL is covered above
def test_cli_status_results_jobs_and_cancel_speak_json_and_csv(migrated_db):
    job_id, ids = make_job(migrated_db, 2)
    finish(migrated_db, ids[0], label="pos")
    status = json.loads(run_lstmq("status", job_id[:8], "--json").stdout)  # the id progress lines show
    assert set(status) == STATUS_KEYS and (status["id"], status["done"], status["pending"]) == (job_id, 1, 1)
    table = list(csv.DictReader(io.StringIO(run_lstmq("results", job_id, "--format", "csv").stdout.decode())))
    assert [(r["id"], r["label"], r["status"]) for r in table] == [("e0", "pos", "done"), ("e1", "", "pending")]
    lines = run_lstmq("results", job_id, "--label", "pos").stdout.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["e0"]
    assert [j["id"] for j in json.loads(run_lstmq("jobs", "--json").stdout)] == [job_id]
    assert run_lstmq("cancel", job_id).stdout.decode().strip() == f"job {job_id} cancelled; 1 document pending"
    assert json.loads(run_lstmq("status", job_id, "--json").stdout)["state"] == "cancelled"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "args, message",
    [
        (["status", "nope"], "error: no job 'nope'"),
        (["results", "nope"], "error: no job 'nope'"),
        (["cancel", "nope"], "error: no job 'nope'"),
        (["results", "{job}", "--format", "xml"], "error: unknown format 'xml' (expected jsonl, csv, table, parquet)"),
        (["jobs", "--limit", "0"], "error: --limit must be at least 1, got 0"),
        (["requeue", "nope"], "error: no job 'nope'"),
        (["requeue", "{cancelled}"], "error: job {cancelled} is cancelled; not requeued"),
    ],
)
def test_cli_query_mistakes_are_one_line(migrated_db, args, message):
    job_id, _ = make_job(migrated_db, 1)
    cancelled, _ = make_job(migrated_db, 1)
    with session_scope(migrated_db) as session:
        cancel_job(session, cancelled)
    proc = run_lstmq(*(a.format(job=job_id, cancelled=cancelled) for a in args))
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [message.format(cancelled=cancelled)]


def add_jobs(engine, *ids: str) -> None:
    with session_scope(engine) as session:
        session.add_all(Job(id=i, task="classify", model="clf", state="queued", total=0, created_at=T0) for i in ids)


def resolve(engine, text: str) -> str:
    with session_scope(engine) as session:
        return find_job(session, text).id


def test_a_unique_prefix_of_six_or_more_characters_names_a_job(migrated_db):
    add_jobs(migrated_db, "abcdef01" + "0" * 24, "abcdef02" + "0" * 24)
    assert resolve(migrated_db, "abcdef01") == "abcdef01" + "0" * 24
    assert resolve(migrated_db, "abcdef02" + "0" * 24) == "abcdef02" + "0" * 24


def test_a_prefix_of_several_jobs_names_none_and_says_so(migrated_db):
    add_jobs(migrated_db, "abcdef01" + "0" * 24, "abcdef02" + "0" * 24)
    with pytest.raises(JobNotFound, match="job id prefix 'abcdef0' matches several jobs .*: give more of it"):
        resolve(migrated_db, "abcdef0")


@pytest.mark.parametrize("text", ["abcde", "abcdef%", "ABCDEF01", "abcdef_1"])
def test_a_short_or_non_hex_prefix_names_no_job(migrated_db, text):
    add_jobs(migrated_db, "abcdef01" + "0" * 24)
    with pytest.raises(JobNotFound, match=f"no job '{text}'"):
        resolve(migrated_db, text)


def test_cli_refuses_an_outdated_schema(lstmq_env, tmp_path):
    lstmq_env(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    proc = run_lstmq("jobs")
    assert proc.returncode == 2
    (line,) = proc.stderr.decode().splitlines()
    assert line.startswith("error: database schema is empty") and line.endswith("run `lstmq db upgrade`")


def test_stored_moments_read_back_in_utc_whether_or_not_the_database_kept_the_zone():
    naive = datetime(2026, 1, 1, 12, 0)  # SQLite hands datetimes back without a zone
    assert as_utc(naive) == T0 and as_utc(naive).tzinfo is UTC
    assert as_utc(T0) is T0
    assert as_utc(None) is None


def test_following_a_job_no_live_worker_takes_says_so(migrated_db, capsys, monkeypatch):
    job_id, ids = make_job(migrated_db, 1)
    looks = []

    def between_looks(_seconds):  # the first look is over: a worker comes and finishes the job
        looks.append(1)
        finish(migrated_db, ids[0], label="pos")

    monkeypatch.setattr(output.time, "sleep", between_looks)
    assert output.follow(migrated_db, job_id).state == "finished" and len(looks) == 1
    assert capsys.readouterr().err.count("waiting: no live worker takes lstmq.classify (start `lstmq worker`)") == 1
