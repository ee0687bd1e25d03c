"""``lstmq prune`` and ``lstmq.db.retention``: old jobs go with everything they own, in chunks,
while recent, open and in-flight jobs stay; a dry run counts the same and deletes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from lstmq.db import retention
from lstmq.db.engine import session_scope
from lstmq.db.retention import Pruned, image_file, prune
from lstmq.db.schema import (
    DOC_DONE,
    JOB_FINISHED,
    JOB_QUEUED,
    JOB_SUBMITTING,
    ApiToken,
    Base,
    Classification,
    Document,
    IdempotencyKey,
    Image,
    Job,
    JobRejection,
    utcnow,
)
from lstmq.durations import parse_duration
from lstmq.errors import ConfigError, InputError
from lstmq.settings import get_settings, load_settings
from tests.support.jobs import add_batch, add_job
from tests.support.processes import run_lstmq

MONTH = timedelta(days=30)
LONG_AGO = timedelta(days=40)
PNG_BYTES = 100
# Every table whose rows belong to a job or to one of its documents (the schema's foreign keys).
OWNED = [
    table
    for table in Base.metadata.sorted_tables
    if table.name == "jobs" or any(fk.column.table.name in ("jobs", "documents") for fk in table.foreign_keys)
]


def old_job(engine, task: str = "classify", docs: int = 3, age: timedelta = LONG_AGO, **job_fields) -> str:
    """A job finished ``age`` ago with a result per document (a PNG file each for render), a
    rejected line and an idempotency key."""
    model = "tiny-gen" if task == "render" else "tiny-clf"
    job_id, ids = add_job(engine, [f"text {i}" for i in range(docs)], model=model, task=task)
    when = utcnow() - age
    with session_scope(engine) as session:
        values = {"done_count": docs, "created_at": when, "finished_at": when} | job_fields
        ended = values["done_count"] + values.get("failed_count", 0) >= docs
        values.setdefault("state", JOB_FINISHED if ended else JOB_QUEUED)  # as the counters' transaction stores it
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.execute(update(Document).where(Document.job_id == job_id).values(status=DOC_DONE))
        for doc_id in ids:
            session.add(result_of(task, model, doc_id))
        session.add(JobRejection(job_id=job_id, line_no=7, reason="no text"))
        if session.get(ApiToken, "tok") is None:
            session.add(ApiToken(id="tok", name="t", scope="submit", salt="s", secret_hash="h"))
            session.flush()
        session.add(IdempotencyKey(token_id="tok", key=job_id, request_hash="x", job_id=job_id))
    return job_id


def result_of(task: str, model: str, doc_id: int):
    if task == "classify":
        return Classification(document_id=doc_id, model=model, model_version="v1", label="a", score=0.9, probs={})
    path = f"{model}/v1/ab/cd/{doc_id}.png"
    file = get_settings().images / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(b"x" * PNG_BYTES)
    return Image(document_id=doc_id, model=model, model_version="v1", path=path, width=1, height=1, sha256="0")


def rows_left(engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {table.name: session.scalar(select(func.count()).select_from(table)) for table in OWNED}


def job_ids(engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.scalars(select(Job.id)))


def test_a_pruned_job_leaves_no_row_in_any_table_it_owns(migrated_db, monkeypatch):
    monkeypatch.setattr(retention, "DOCS_PER_TRANSACTION", 2)  # several chunks per job
    old_job(migrated_db, "classify", docs=5)
    old_job(migrated_db, "render", docs=5)
    prune(migrated_db, get_settings().images, MONTH)
    assert rows_left(migrated_db) == {table.name: 0 for table in OWNED}


def test_a_pruned_render_job_leaves_no_image_file(migrated_db):
    old_job(migrated_db, "render", docs=4)
    prune(migrated_db, get_settings().images, MONTH)
    assert [p for p in get_settings().images.rglob("*") if p.is_file()] == []


def sharing_job(engine, source: str, age: timedelta = LONG_AGO) -> str:
    """A render job whose image row names ``source``'s file, as a reused result does."""
    job_id = old_job(engine, "render", docs=1, age=age)
    with session_scope(engine) as session:
        shared = session.scalar(select(Image.path).join(Document).where(Document.job_id == source))
        image = session.scalar(select(Image).join(Document).where(Document.job_id == job_id))
        (get_settings().images / image.path).unlink()
        image.path = shared
    return job_id


def source_file(engine, job_id: str):
    with session_scope(engine) as session:
        return get_settings().images / session.scalar(
            select(Image.path).join(Document).where(Document.job_id == job_id)
        )


def test_a_file_another_jobs_image_still_names_is_kept(migrated_db):
    source = old_job(migrated_db, "render", docs=1)
    sharing_job(migrated_db, source, age=timedelta(days=1))  # recent: kept
    file = source_file(migrated_db, source)
    prune(migrated_db, get_settings().images, MONTH)
    assert file.is_file()


def test_a_shared_file_goes_with_the_last_job_that_names_it(migrated_db):
    source = old_job(migrated_db, "render", docs=1)
    sharing_job(migrated_db, source)
    file = source_file(migrated_db, source)
    prune(migrated_db, get_settings().images, MONTH)
    assert not file.exists()


def test_prune_reports_jobs_documents_images_and_bytes(migrated_db):
    old_job(migrated_db, "classify", docs=3)
    old_job(migrated_db, "render", docs=4)
    assert prune(migrated_db, get_settings().images, MONTH) == Pruned(
        jobs=2, documents=7, images=4, bytes=4 * PNG_BYTES
    )


def test_a_job_that_changed_recently_is_kept(migrated_db):
    recent = old_job(migrated_db, age=timedelta(days=2))
    prune(migrated_db, get_settings().images, MONTH)
    assert job_ids(migrated_db) == {recent}


def test_an_old_job_that_finished_recently_is_kept(migrated_db):
    job_id = old_job(migrated_db, finished_at=utcnow() - timedelta(days=1))
    prune(migrated_db, get_settings().images, MONTH)
    assert job_ids(migrated_db) == {job_id}


def test_an_open_job_is_kept_unless_state_any_is_asked_for(migrated_db):
    open_job = old_job(migrated_db, done_count=1)  # two documents still pending
    prune(migrated_db, get_settings().images, MONTH)
    assert job_ids(migrated_db) == {open_job}


def test_state_any_prunes_an_old_open_job(migrated_db):
    old_job(migrated_db, state=JOB_SUBMITTING, done_count=0)
    prune(migrated_db, get_settings().images, MONTH, state="any")
    assert job_ids(migrated_db) == set()


def test_a_job_with_a_batch_in_flight_is_never_pruned(migrated_db):
    job_id = old_job(migrated_db, done_count=0, finished_at=None)
    with session_scope(migrated_db) as session:
        ids = list(session.scalars(select(Document.id).where(Document.job_id == job_id)))
    add_batch(migrated_db, job_id, ids)
    prune(migrated_db, get_settings().images, MONTH, state="any")
    assert job_ids(migrated_db) == {job_id}


def test_state_cancelled_keeps_finished_jobs(migrated_db):
    finished = old_job(migrated_db)
    old_job(migrated_db, state="cancelled")
    prune(migrated_db, get_settings().images, MONTH, state="cancelled")
    assert job_ids(migrated_db) == {finished}


def test_a_dry_run_deletes_nothing(migrated_db):
    old_job(migrated_db, "render", docs=3)
    before = rows_left(migrated_db)
    prune(migrated_db, get_settings().images, MONTH, dry_run=True)
    assert rows_left(migrated_db) == before
    assert len([p for p in get_settings().images.rglob("*.png")]) == 3


def test_a_dry_run_reports_what_the_real_run_removes(migrated_db):
    old_job(migrated_db, "classify", docs=3)
    old_job(migrated_db, "render", docs=2)
    dry = prune(migrated_db, get_settings().images, MONTH, dry_run=True)
    assert prune(migrated_db, get_settings().images, MONTH) == dry


def test_an_image_path_leading_out_of_the_image_dir_is_left_alone(tmp_path):
    (tmp_path / "images").mkdir()
    assert image_file(tmp_path / "images", "../secret.png") is None


def test_an_image_path_inside_the_image_dir_is_that_file(tmp_path):
    assert image_file(tmp_path, "m/v/ab/cd/1.png") == tmp_path.resolve() / "m/v/ab/cd/1.png"


@pytest.mark.parametrize(
    "text, expected", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))]
)
def test_durations_in_days_hours_and_minutes(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "1.5d", "-3d", "0d", "30s", "30 days", ""])
def test_a_bad_duration_is_refused_in_one_line(text):
    with pytest.raises(InputError, match=r"^[^\n]*e\.g\. 30d, 12h or 90m$"):
        parse_duration(text, "--older-than")


def test_prune_command_refuses_a_bad_duration_with_one_error_line(migrated_db):
    proc = run_lstmq("prune", "--older-than", "30x")
    assert (proc.returncode, proc.stderr.decode().splitlines()) == (
        2,
        [
            "error: --older-than '30x' is not a duration: give a whole number of days, hours or minutes, e.g. 30d, 12h or 90m"
        ],
    )


def test_prune_command_prints_what_it_removed(migrated_db):
    old_job(migrated_db, "classify", docs=3)
    proc = run_lstmq("prune", "--older-than", "30d")
    assert proc.stdout.decode() == "pruned 1 job: 3 documents, 0 images, 0 bytes of image files\n"


def test_a_bad_retain_setting_is_one_config_line(lstmq_env):
    lstmq_env(retain="forever")
    with pytest.raises(ConfigError, match=r"^LSTMQ_RETAIN 'forever' is not a duration[^\n]*$"):
        load_settings()
