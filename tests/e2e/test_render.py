"""End to end: `submit --task render` -> broker -> a real `lstmq worker` -> PNG files + image rows,
and `lstmq results` gives each document's image path. Embedded setup and PostgreSQL + Redis."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from lstmq.db.schema import Document, Image
from tests.support.jobs import job_finished, status_counts
from tests.support.postgres import empty_postgres
from tests.support.processes import WorkerProcess, worker_env
from tests.support.stacks import JOB_TIMEOUT_S
from tests.support.tiny_generator import TINY_NAME, make_tiny_generator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

CAPTIONS = [
    "a red circle",
    "a small blue square at the top left",
    "",
    "a cyan diamond below a white triangle",
    "Oil prices rose sharply on Monday after the cartel announced new cuts. " * 30,
]


@pytest.fixture(params=["embedded", "services"])
def render_stack(request, lstmq_env, tmp_path):
    import redis

    from lstmq.db.engine import get_engine
    from lstmq.db.migrate import upgrade

    make_tiny_generator(tmp_path / "models")
    settings = {"model_dir": str(tmp_path / "models"), "image_dir": str(tmp_path / "images")}
    if request.param == "services":
        broker = request.getfixturevalue("redis_url")
        redis.Redis.from_url(broker).flushdb()
        settings.update(database_url=empty_postgres(request.getfixturevalue("pg_url")), broker_url=broker)
    home = lstmq_env(**settings)
    home.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    upgrade(engine)
    worker = WorkerProcess(worker_env(), home / "worker.log", "--threads=1")
    yield engine, tmp_path / "images", worker
    worker.kill()
    engine.dispose()


def test_submitted_captions_become_png_files_recorded_per_document(render_stack, tmp_path):
    from lstmq.db.engine import session_scope
    from lstmq.db.queries import get_job, result_rows
    from lstmq.producer.submit import submit_records
    from lstmq.queue import make_celery
    from lstmq.readers.sources import read_sources, resolve_sources

    engine, images, worker = render_stack
    source = tmp_path / "captions.jsonl"
    source.write_text("".join(json.dumps({"id": f"c{i}", "text": t}) + "\n" for i, t in enumerate(CAPTIONS)))
    report = submit_records(
        engine,
        make_celery(),
        read_sources(resolve_sources([str(source)])),
        task="render",
        model=TINY_NAME,
        batch_size=2,
        sources=[str(source)],
    )
    worker.wait_ready()
    wait_until(lambda: job_finished(engine, report.job_id), JOB_TIMEOUT_S, what="render job" + worker.log()[-2000:])

    counts = status_counts(engine, report.job_id)
    assert counts["done"] == 4 and counts["failed"] + counts["done"] == report.total
    with engine.connect() as conn:
        rows = conn.execute(
            select(Document.external_id, Image.path, Image.sha256, Image.flags)
            .join(Image, Image.document_id == Document.id)
            .where(Document.job_id == report.job_id)
        ).all()
    assert len(rows) == 4 and len({r.path for r in rows}) == 4
    for row in rows:
        assert hashlib.sha256((images / row.path).read_bytes()).hexdigest() == row.sha256
    with session_scope(engine) as session:
        results = {r["id"]: r for r in result_rows(session, get_job(session, report.job_id))}
    assert {k: bool(v["image_path"]) for k, v in results.items() if v["status"] == "done"} == {
        r.external_id: True for r in rows
    }
    assert all((images / v["image_path"]).is_file() for v in results.values() if v["image_path"])
