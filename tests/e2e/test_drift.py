"""Drift end to end: a news schedule on the embedded database and broker with a real worker. Its
folder gets 300 AG News documents a run, mostly World twice, then mostly Sports; `lstmq drift`
says the third run drifted and the second did not."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from sqlalchemy import select

from lstmq.db.engine import get_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.schema import ScheduleRun
from lstmq.producer.schedules.store import NewSchedule, add_schedule
from lstmq.producer.schedules.timing import Timing
from tests.support.inputs import write
from tests.support.jobs import job_finished
from tests.support.processes import WorkerProcess, run_lstmq, worker_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

PER_RUN, MAIN_SHARE = 300, 0.8


def mixes(shared_data) -> list[list[str]]:
    """Three runs' texts, none repeated: mostly World, mostly World, mostly Sports."""
    by_label: dict[str, list[str]] = {}
    with gzip.open(shared_data / "ag_news" / "dev.jsonl.gz", "rt", encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            by_label.setdefault(row["label"], []).append(row["text"])
    for texts in by_label.values():
        random.Random(0).shuffle(texts)
    runs = []
    for main in ("World", "World", "Sports"):
        counts = {label: int(PER_RUN * (1 - MAIN_SHARE) / 3) for label in by_label} | {main: int(PER_RUN * MAIN_SHARE)}
        runs.append([by_label[label].pop() for label, n in counts.items() for _ in range(n)])
    return runs


def latest_job(engine) -> str:
    with session_scope(engine) as session:
        return session.scalar(select(ScheduleRun.job_id).order_by(ScheduleRun.id.desc()).limit(1))


def test_a_news_schedule_drifts_when_its_folder_turns_from_world_to_sports(lstmq_env, shared_data, tmp_path):
    lstmq_env()  # SQLite and the embedded broker under this test's LSTMQ_HOME
    engine = get_engine()
    upgrade(engine)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    runs = mixes(shared_data)
    write(corpus / "day0.jsonl", *runs[0])  # a schedule's glob must match a file when it is added
    with session_scope(engine) as session:
        add_schedule(session, NewSchedule("wire", str(corpus / "*.jsonl"), "classify", "news", Timing(every_s=3600)))
    worker = WorkerProcess(worker_env(), tmp_path / "worker.log")
    try:
        worker.wait_ready()
        for day, texts in enumerate(runs):
            if day:
                write(corpus / f"day{day}.jsonl", *texts)
            ran = run_lstmq("schedule", "run", "wire")
            assert ran.returncode == 0, ran.stderr
            job_id = latest_job(engine)
            wait_until(lambda job_id=job_id: job_finished(engine, job_id), 120, lambda: worker.log()[-2000:])
        report = run_lstmq("drift", "wire", "--json")
        assert report.returncode == 0, report.stderr
    finally:
        worker.kill()
    assert [run["drifted"] for run in json.loads(report.stdout)["runs"]] == [False, False, True]
