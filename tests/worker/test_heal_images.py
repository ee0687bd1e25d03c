"""Image write failures are transient (the batch is retried until the disk is usable again,
nothing is marked failed), and `lstmq requeue JOB --failed` re-sends failed documents once their
cause is fixed; their error stays until a result lands."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from lstmq.db.schema import DOC_FAILED, Document
from lstmq.errors import TransientError
from lstmq.sending import requeue
from lstmq.worker.render import render_batch
from tests.support.dispatch import send_all
from tests.support.jobs import add_job, batch_of, status_counts
from tests.support.queued import queued_doc_ids
from tests.support.tiny_generator import TINY_NAME, make_tiny_generator

CAPTIONS = ["a red circle", "a blue square", "a green triangle"]


@pytest.fixture
def env(migrated_db, lstmq_env, tmp_path, db_url):
    make_tiny_generator(tmp_path / "models")
    lstmq_env(database_url=db_url, model_dir=str(tmp_path / "models"), image_dir=str(tmp_path / "images"))
    return migrated_db, tmp_path / "images"


def test_an_image_folder_that_cannot_be_written_retries_the_batch_and_fails_nothing(env):
    engine, root = env
    root.mkdir()
    (root / TINY_NAME).write_text("a file where the model's folder should be")  # every write fails
    job_id, ids = add_job(engine, CAPTIONS, model=TINY_NAME, task="render")
    batch = batch_of(job_id, TINY_NAME, ids, CAPTIONS)
    with pytest.raises(TransientError, match="cannot write images"):
        render_batch(batch, engine, device="cpu")
    assert status_counts(engine, job_id) == {"pending": 3}

    (root / TINY_NAME).unlink()  # the cause is fixed: the retry succeeds
    assert render_batch(batch, engine, device="cpu") == {"done": 3, "failed": 0, "skipped": 0}


def test_requeue_failed_sends_failed_documents_again_and_reopens_the_job(migrated_db, celery_app, redis_url):
    job_id, ids = add_job(migrated_db, ["one", "two", "three"])
    with migrated_db.begin() as conn:
        conn.execute(update(Document).where(Document.id != ids[0]).values(status=DOC_FAILED, error="disk full"))
    assert requeue(migrated_db, job_id) == 1  # failed ones stay failed
    send_all(migrated_db, celery_app)
    assert requeue(migrated_db, job_id, failed=True) == 3  # and the pending one
    send_all(migrated_db, celery_app)
    assert sorted(queued_doc_ids(redis_url)) == sorted([ids[0], *ids])
    assert status_counts(migrated_db, job_id) == {"pending": 3}
    with migrated_db.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.id.in_(ids[1:]))).all()
    assert errors == ["disk full", "disk full"]  # cleared when a result lands
