"""The render batch against a real database (SQLite and PostgreSQL): PNG files plus one image
row per document, idempotent on redelivery, per-document errors for captions with no image."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, update

from lstmq.db.schema import DOC_PENDING, Document, Image, ModelVersion
from lstmq.worker.render import render_batch
from tests.support.jobs import add_job, batch_of, status_counts
from tests.support.tiny_generator import TINY_NAME, make_tiny_generator

CAPTIONS = [
    "a red circle",
    "a large blue square to the left of a small green triangle",
    "a glittering purple diamond at the top",
    "Stocks rallied on Friday as oil prices fell " * 20,
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_tiny_generator(folder)
    return folder


@pytest.fixture
def env(migrated_db, lstmq_env, model_dir, tmp_path, db_url):
    lstmq_env(database_url=db_url, model_dir=str(model_dir), image_dir=str(tmp_path / "images"))
    return migrated_db, tmp_path / "images"


def image_rows(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(
            select(Image)
            .join(Document, Document.id == Image.document_id)
            .where(Document.job_id == job_id)
            .order_by(Image.document_id)
        ).all()


def files_under(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_each_document_gets_a_png_and_one_row_with_its_size_hash_and_version(env):
    engine, root = env
    job_id, ids = add_job(engine, CAPTIONS, model=TINY_NAME, task="render")
    counts = render_batch(batch_of(job_id, TINY_NAME, ids, CAPTIONS), engine, device="cpu")

    assert counts == {"done": 4, "failed": 0, "skipped": 0}
    rows = image_rows(engine, job_id)
    assert [r.document_id for r in rows] == ids
    for row in rows:
        data = (root / row.path).read_bytes()
        assert data.startswith(b"\x89PNG") and hashlib.sha256(data).hexdigest() == row.sha256
        assert (row.width, row.height, row.model) == (64, 64, TINY_NAME)
        assert not row.path.startswith("/") and ".." not in row.path
    assert [r.flags for r in rows] == [[], [], ["unknown_words"], ["truncated", "unknown_words", "out_of_domain"]]
    assert status_counts(engine, job_id) == {"done": 4}
    with engine.connect() as conn:
        assert (
            conn.scalar(select(ModelVersion.kind).where(ModelVersion.version == rows[0].model_version)) == "generator"
        )


def test_a_redelivered_batch_rewrites_the_same_files_and_rows_never_extra_ones(env):
    engine, root = env
    job_id, ids = add_job(engine, CAPTIONS, model=TINY_NAME, task="render")
    batch = batch_of(job_id, TINY_NAME, ids, CAPTIONS)
    render_batch(batch, engine, device="cpu")
    first_rows, first_files = image_rows(engine, job_id), files_under(root)

    assert render_batch(batch, engine, device="cpu")["skipped"] == 4  # done documents are skipped
    with engine.begin() as conn:  # a crash after the files but before the commit: redo everything
        conn.execute(update(Document).where(Document.job_id == job_id).values(status=DOC_PENDING))
    assert render_batch(batch, engine, device="cpu")["done"] == 4

    again = image_rows(engine, job_id)
    assert files_under(root) == first_files and len(first_files) == 4
    assert [(r.path, r.sha256) for r in again] == [(r.path, r.sha256) for r in first_rows]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Image)) == 4


def test_empty_captions_fail_alone_and_the_rest_of_the_batch_is_drawn(env):
    engine, _ = env
    texts = ["a red circle", "", "   \n", "a blue square"]
    job_id, ids = add_job(engine, texts, model=TINY_NAME, task="render")
    assert render_batch(batch_of(job_id, TINY_NAME, ids), engine, device="cpu")["failed"] == 2
    with engine.connect() as conn:
        rows = conn.execute(
            select(Document.status, Document.error).where(Document.job_id == job_id).order_by(Document.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("done", None),
        ("failed", "empty text"),
        ("failed", "empty text"),
        ("done", None),
    ]
    assert len(image_rows(engine, job_id)) == 2


def test_an_unknown_model_fails_every_document_with_the_reason(env):
    engine, root = env
    job_id, ids = add_job(engine, CAPTIONS[:2], model="no-such-generator", task="render")
    render_batch(batch_of(job_id, "no-such-generator", ids, CAPTIONS[:2]), engine, device="cpu")
    with engine.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == job_id)).all()
    assert len(errors) == 2 and all("unknown model 'no-such-generator'" in e for e in errors)
    assert files_under(root) == [] if root.exists() else True
