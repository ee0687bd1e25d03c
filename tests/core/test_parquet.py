"""Results as Parquet (``lstmq.parquet``): the CSV's columns, typed, one row per document, in row
groups, in bounded memory; without pyarrow, one line saying how to install it."""

from __future__ import annotations

import sys
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert, update

from lstmq.db.engine import session_scope
from lstmq.db.queries import RENDER_COLUMNS, RESULT_COLUMNS, get_job, result_rows
from lstmq.db.schema import DOC_DONE, DOC_FAILED, Classification, Document, Image, Job
from lstmq.errors import NotInstalled
from lstmq.parquet import write_parquet, write_parquet_file
from tests.support.jobs import add_job

BIG_JOB = 20_000
MEMORY_LIMIT = 4 << 20  # bytes; the job's rows held at once would take several times this


def classify_job(engine) -> str:
    """Three documents: one classified, one failed, one pending."""
    job_id, ids = add_job(engine, ["a", "b", "c"], model="news")
    with session_scope(engine) as session:
        session.get(Document, ids[0]).status = DOC_DONE
        session.add(
            Classification(document_id=ids[0], model="news", model_version="v1", label="World", score=0.75, probs={})
        )
        failed = session.get(Document, ids[1])
        failed.status, failed.error = DOC_FAILED, "too long"
    return job_id


def render_job(engine) -> str:
    job_id, ids = add_job(engine, ["a red circle", "a blue square"], model="shapes", task="render")
    with session_scope(engine) as session:
        session.get(Document, ids[0]).status = DOC_DONE
        session.add(
            Image(
                document_id=ids[0],
                model="shapes",
                model_version="v1",
                path="shapes/v1/ab/cd/1.png",
                width=64,
                height=64,
                sha256="0",
            )
        )
    return job_id


def exported(engine, job_id: str, path, **options) -> pa.Table:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        write_parquet(result_rows(session, job), job.task, str(path), **options)
    return pq.read_table(path)


def streamed(engine, job_id: str) -> list[dict]:
    with session_scope(engine) as session:
        return list(result_rows(session, get_job(session, job_id)))


def test_a_classify_jobs_parquet_holds_one_row_per_document_as_the_stream_does(migrated_db, tmp_path):
    job_id = classify_job(migrated_db)
    assert exported(migrated_db, job_id, tmp_path / "r.parquet").to_pylist() == streamed(migrated_db, job_id)


def test_parquet_columns_are_the_csv_columns_typed(migrated_db, tmp_path):
    table = exported(migrated_db, classify_job(migrated_db), tmp_path / "r.parquet")
    expected = [(name, pa.float64() if name == "score" else pa.string()) for name in RESULT_COLUMNS]
    assert [(field.name, field.type) for field in table.schema] == expected


def test_a_document_without_a_result_has_a_null_score(migrated_db, tmp_path):
    table = exported(migrated_db, classify_job(migrated_db), tmp_path / "r.parquet")
    assert table.column("score").to_pylist() == [0.75, None, None]


def test_a_render_jobs_parquet_carries_the_image_path(migrated_db, tmp_path):
    table = exported(migrated_db, render_job(migrated_db), tmp_path / "r.parquet")
    assert table.column_names == list(RENDER_COLUMNS)
    assert table.column("image_path").to_pylist() == ["shapes/v1/ab/cd/1.png", None]


def test_parquet_is_written_in_row_groups(migrated_db, tmp_path):
    exported(migrated_db, classify_job(migrated_db), tmp_path / "r.parquet", row_group_rows=2)
    assert pq.ParquetFile(tmp_path / "r.parquet").metadata.num_row_groups == 2


def test_a_large_jobs_parquet_is_written_in_bounded_memory(migrated_db, tmp_path):
    job_id = classified_in_bulk(migrated_db, BIG_JOB)
    tracemalloc.start()
    try:
        rows = exported(migrated_db, job_id, tmp_path / "big.parquet", row_group_rows=1000).num_rows
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (rows, peak < MEMORY_LIMIT) == (BIG_JOB, True)


def test_a_failed_export_leaves_no_file_under_the_name_asked_for(tmp_path):
    def broken_rows():
        yield {"id": "1", "status": "done"}
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        write_parquet_file(broken_rows(), "classify", tmp_path / "r.parquet")
    assert list(tmp_path.iterdir()) == []


def test_without_pyarrow_parquet_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    with pytest.raises(NotInstalled, match=r"^Parquet needs pyarrow: pip install 'lstmq\[parquet\]'$"):
        write_parquet_file([], "classify", tmp_path / "r.parquet")


def classified_in_bulk(engine, n: int) -> str:
    job_id, _ = add_job(engine, [])
    docs = [
        {"job_id": job_id, "external_id": f"doc-{i}", "source": "bulk", "record_no": i, "line_no": i + 1}
        | {"content_hash": "0" * 64, "text": f"text {i}", "status": DOC_DONE}
        for i in range(n)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Document), docs)
        session.execute(update(Job).where(Job.id == job_id).values(total=n, done_count=n))
    with session_scope(engine) as session:
        ids = session.scalars(
            Document.__table__.select().with_only_columns(Document.id).where(Document.job_id == job_id)
        )
        results = [
            {"document_id": i, "model": "news", "model_version": "v1", "label": "World", "score": 0.5, "probs": {}}
            for i in ids
        ]
        session.execute(insert(Classification), results)
    return job_id
