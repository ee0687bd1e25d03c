"""The whole scenario by hand, automated: a corpus folder on a 2-second schedule, a real
`lstmq scheduler` and a real `lstmq worker` on PostgreSQL + Redis. Every document of the
corpus ends up classified exactly once, including lines appended and files added later."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Classification, Document, Job
from lstmq.producer.schedules.store import NewSchedule, add_schedule
from lstmq.producer.schedules.timing import Timing
from lstmq.settings import SAMPLES_DIR
from tests.support.inputs import write
from tests.support.postgres import empty_postgres
from tests.support.processes import WorkerProcess, worker_env
from tests.support.schedules import beat_runs
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def classifier(lstmq_env, pg_url, redis_url):
    """Settings on an empty PostgreSQL + this session's Redis; the name of an installed classifier."""
    import redis

    from lstmq.db.engine import get_engine
    from lstmq.db.migrate import upgrade
    from lstmq.modelstore import installed_models

    redis.Redis.from_url(redis_url).flushdb()
    models = {"model_dir": os.environ["LSTMQ_TEST_MODEL_DIR"]} if os.environ.get("LSTMQ_TEST_MODEL_DIR") else {}
    lstmq_env(database_url=empty_postgres(pg_url), broker_url=redis_url, **models)
    upgrade(get_engine())
    found = [m.name for m in installed_models() if m.kind == "classifier"]
    if not found:
        (pytest.fail if CI else pytest.skip)("no classifier installed (shipped models missing)")
    yield found[0]
    get_engine().dispose()


def texts(n: int, start_at: int = 0) -> list[str]:
    lines = [json.loads(line)["text"] for line in (SAMPLES_DIR / "sms.jsonl").read_text().splitlines()]
    return [f"{lines[i % len(lines)]} #{i}" for i in range(start_at, start_at + n)]


def classified_texts(engine) -> dict[str, int]:
    """text -> classification rows for it, over every document of every scheduled job."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Document.text, func.count(Classification.document_id))
            .join(Job, Job.id == Document.job_id)
            .where(Job.schedule_id.is_not(None))
            .outerjoin(Classification, Classification.document_id == Document.id)
            .group_by(Document.id, Document.text)
        ).all()
    found: dict[str, int] = {}
    for text, count in rows:
        found[text] = found.get(text, 0) + count
    return found


def test_a_scheduled_corpus_is_classified_exactly_once_by_a_real_worker(classifier, tmp_path, start, capsys):
    from lstmq.db.engine import get_engine

    engine = get_engine()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus / "day1.jsonl", *texts(30))
    with session_scope(engine) as session:
        add_schedule(session, NewSchedule("sms", str(corpus / "*.jsonl"), "classify", classifier, Timing(every_s=2)))
    worker = WorkerProcess(worker_env(), tmp_path / "worker.log")
    try:
        start()
        worker.wait_ready()
        first = set(texts(30))
        wait_until(lambda: classified_texts(engine) == dict.fromkeys(first, 1), 90, "the first 30 documents")
        write(corpus / "day1.jsonl", *texts(5, 30))
        write(corpus / "day2.jsonl", *texts(5, 35))
        every = set(texts(40))
        wait_until(
            lambda: classified_texts(engine) == dict.fromkeys(every, 1),
            60,
            "appended lines and the new file\n" + worker.log()[-2000:],
        )
        runs = len(beat_runs(engine))
        wait_until(lambda: len(beat_runs(engine)) >= runs + 2, 20, "two more runs")
        assert classified_texts(engine) == dict.fromkeys(every, 1)
        assert_results_command_shows_every_document(engine, capsys, classifier, every)
    finally:
        worker.kill()


def assert_results_command_shows_every_document(engine, capsys, model: str, every: set[str]) -> None:
    """`lstmq jobs --json` and `lstmq results JOB` treat scheduled jobs like any other."""
    from lstmq.cli import main

    capsys.readouterr()
    main(["jobs", "--json"])
    jobs = json.loads(capsys.readouterr().out)
    assert {job["schedule"] for job in jobs} == {"sms"} and sum(job["done"] for job in jobs) == len(every)
    rows = []
    for job in jobs:
        main(["results", job["id"]])
        rows += [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(every) and {(r["model"], r["status"]) for r in rows} == {(model, "done")}
