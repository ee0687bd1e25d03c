"""Running out of GPU memory is transient: a batch is split and its halves retried, and only a
document that does not fit even alone fails. Fake models raise torch's own OutOfMemoryError
(CPU builds have it too), so no GPU is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sqlalchemy import select

import lstmq.worker.classify
import lstmq.worker.render
from lstmq.db.schema import Document, Image
from lstmq.worker.classify import classify_batch
from lstmq.worker.ml.classifier.inference import Prediction
from lstmq.worker.ml.generator.inference import Rendered
from lstmq.worker.render import render_batch
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts

TEXTS = [f"document number {i}" for i in range(7)] + ["a huge document"]
CAPACITY = 2  # texts the fake GPU holds at once


class SmallGpu:
    """Runs out of memory on more than CAPACITY texts, and on any text with "huge" in it."""

    name, labels, max_tokens, device, version = "fake", ["short", "long"], 64, "cuda", "abc123"

    def __init__(self):
        self.calls: list[int] = []

    def fit(self, texts) -> None:
        self.calls.append(len(texts))
        if len(texts) > CAPACITY or any("huge" in t for t in texts):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def predict(self, texts):
        self.fit(texts)
        return [Prediction("short", 0.9, [0.9, 0.1]) for _ in texts]

    def render(self, texts, seeds):
        self.fit(texts)
        return [Rendered(np.full((8, 8, 3), seed % 256, dtype=np.uint8)) for seed in seeds]


@pytest.fixture
def gpu(monkeypatch):
    model = SmallGpu()
    monkeypatch.setattr(lstmq.worker.classify, "load_classifier", lambda name, device="auto": model)
    monkeypatch.setattr(lstmq.worker.render, "load_image_generator", lambda name, device="auto": model)
    return model


@pytest.fixture
def engine(migrated_db, lstmq_env, db_url, tmp_path):
    lstmq_env(database_url=db_url, image_dir=str(tmp_path / "images"))
    return migrated_db


def errors_by_document(engine, job_id) -> dict[int, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Document.id, Document.error).where(Document.job_id == job_id)).all())


def test_a_classify_batch_that_runs_out_of_gpu_memory_is_split_until_every_document_fits(engine, gpu):
    job_id, ids = add_job(engine, TEXTS[:7])
    assert classify_batch(batch_of(job_id, "fake", ids), engine) == {"done": 7, "failed": 0, "skipped": 0}
    assert set(results_per_document(engine, job_id).values()) == {1} and len(results_per_document(engine, job_id)) == 7
    assert gpu.calls == [7, 3, 1, 2, 4, 2, 2]  # 7 -> 3 + 4 -> (1 + 2) + (2 + 2)


def test_only_the_document_that_does_not_fit_alone_fails_a_classify_batch(engine, gpu):
    job_id, ids = add_job(engine, TEXTS)
    assert classify_batch(batch_of(job_id, "fake", ids), engine) == {"done": 7, "failed": 1, "skipped": 0}
    errors = errors_by_document(engine, job_id)
    assert [doc for doc, error in errors.items() if error] == [ids[-1]]
    assert "GPU memory" in errors[ids[-1]] and "CUDA out of memory" in errors[ids[-1]]


def test_a_render_batch_that_runs_out_of_gpu_memory_is_split_and_every_image_is_stored(engine, gpu):
    job_id, ids = add_job(engine, TEXTS, model="fake", task="render")
    assert render_batch(batch_of(job_id, "fake", ids), engine) == {"done": 7, "failed": 1, "skipped": 0}
    assert status_counts(engine, job_id) == {"done": 7, "failed": 1}
    with engine.connect() as conn:
        drawn = conn.scalars(select(Image.document_id).order_by(Image.document_id)).all()
    assert drawn == ids[:-1]
    assert "GPU memory" in errors_by_document(engine, job_id)[ids[-1]]
