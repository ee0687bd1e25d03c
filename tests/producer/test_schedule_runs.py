"""Incremental runs against a real database (SQLite and PostgreSQL) and Redis, without beat:
each run queues exactly the documents not yet processed, and records what it saw."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document, Job, ScheduleRun
from lstmq.producer.schedules.run import run_schedule
from lstmq.producer.schedules.store import NewSchedule, add_schedule, get_schedule
from lstmq.producer.schedules.timing import Timing
from tests.support.dispatch import send_all
from tests.support.models import install_fake_model
from tests.support.queued import queued_payloads


def write(path: Path, *texts: str, mode: str = "w", ids=None) -> None:
    ids = ids or [None] * len(texts)
    with path.open(mode) as fh:
        for text, ext in zip(texts, ids, strict=True):
            fh.write(json.dumps({"text": text} if ext is None else {"id": ext, "text": text}) + "\n")


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "day1.jsonl", "a1", "a2", "a3")
    return folder


@pytest.fixture
def sched(migrated_db, celery_app, models, corpus):
    """A schedule over corpus/*.jsonl; returns a function doing one run."""
    with session_scope(migrated_db) as session:
        sched_id = add_schedule(
            session,
            NewSchedule(
                name="dumps",
                path=str(corpus / "*.jsonl"),
                task="classify",
                model="tiny-clf",
                timing=Timing(every_s=3600),
            ),
        ).id

    def run(**options):
        return run_schedule(migrated_db, celery_app, sched_id, **options)

    run.id = sched_id
    return run


def queued_texts(engine, redis_url) -> Counter:
    """How many times each text was sent to the classify queue (by a dispatcher with room for all)."""
    send_all(engine)
    ids = [doc_id for payload in queued_payloads(redis_url) for doc_id in payload["ids"]]
    with session_scope(engine) as session:
        text_of = dict(session.execute(select(Document.id, Document.text).where(Document.id.in_(ids))).all())
    return Counter(text_of[i] for i in ids)


def test_a_first_run_queues_the_whole_corpus_as_one_job_linked_to_its_schedule(sched, migrated_db, redis_url):
    report = sched()
    assert (report.state, report.scan.queued, report.scan.files_read) == ("ok", 3, 1)
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1, "a3": 1})
    with session_scope(migrated_db) as session:
        job = session.get(Job, report.job_id)
        assert (job.schedule_id, job.state, job.total, job.task, job.model) == (
            sched.id,
            "queued",
            3,
            "classify",
            "tiny-clf",
        )


def test_an_unchanged_corpus_queues_nothing_over_several_runs(sched, migrated_db, redis_url):
    sched()
    later = [sched() for _ in range(3)]
    assert [(r.state, r.scan.queued, r.scan.files_read, r.job_id) for r in later] == [("ok", 0, 0, None)] * 3
    assert sum(queued_texts(migrated_db, redis_url).values()) == 3
    with session_scope(migrated_db) as session:
        assert session.query(Job).count() == 1


def test_appended_lines_and_new_files_are_queued_exactly_once(sched, migrated_db, redis_url, corpus):
    sched()
    write(corpus / "day1.jsonl", "a4", mode="a")
    write(corpus / "day2.jsonl", "b1", "b2")
    second = sched()
    assert (second.scan.queued, second.scan.files_read) == (3, 2)
    sched()
    assert queued_texts(migrated_db, redis_url) == Counter({t: 1 for t in ["a1", "a2", "a3", "a4", "b1", "b2"]})
    with session_scope(migrated_db) as session:
        lines = session.execute(
            select(Document.text, Document.line_no, Document.source).where(Document.job_id == second.job_id)
        ).all()
    assert sorted(lines) == [
        ("a4", 4, str(corpus / "day1.jsonl")),
        ("b1", 1, str(corpus / "day2.jsonl")),
        ("b2", 2, str(corpus / "day2.jsonl")),
    ]


def test_a_truncated_file_is_read_again_from_the_start_but_done_texts_are_not_queued_again(
    sched, migrated_db, redis_url, corpus
):
    sched()
    write(corpus / "day1.jsonl", "a1", "new")
    report = sched()
    assert report.scan.queued == 1 and report.scan.skipped == 1
    assert any("truncated, read again from the start" in p for p in report.scan.problems)
    assert queued_texts(migrated_db, redis_url)["new"] == 1 and queued_texts(migrated_db, redis_url)["a1"] == 1


def test_a_replaced_file_is_read_again_from_the_start(sched, migrated_db, redis_url, corpus):
    sched()
    replacement = corpus / "tmp.part"
    write(replacement, "a1", "a2", "a3", "a9")  # longer, same first lines: only the inode tells
    os.replace(replacement, corpus / "day1.jsonl")
    report = sched()
    assert (report.scan.queued, report.scan.skipped) == (1, 3)
    assert any("replaced, read again from the start" in p for p in report.scan.problems)


def test_a_document_whose_id_comes_back_with_new_text_is_queued_again(sched, migrated_db, redis_url, corpus):
    write(corpus / "day1.jsonl", "v1", ids=["doc-7"])
    sched()
    write(corpus / "day1.jsonl", "v1", "v2", ids=["doc-7", "doc-7"], mode="w")
    report = sched()
    assert report.scan.queued == 1
    assert queued_texts(migrated_db, redis_url) == Counter({"v1": 1, "v2": 1})


def test_corrupt_records_are_rejected_and_reported_in_the_history(sched, migrated_db, corpus):
    (corpus / "day1.jsonl").write_text('{"text": "ok"}\n{broken\n{"body": "no text"}\n')
    report = sched()
    assert (report.scan.queued, report.scan.rejected) == (1, 2)
    with session_scope(migrated_db) as session:
        run = session.get(ScheduleRun, report.run_id)
        job = session.get(Job, report.job_id)
        assert (run.rejected, job.rejected) == (2, 2)
        assert [p.split(": ")[0] for p in run.problems] == [f"{corpus}/day1.jsonl:2", f"{corpus}/day1.jsonl:3"]


def test_a_deleted_file_is_reported_and_the_rest_is_still_read(sched, migrated_db, corpus):
    sched()
    (corpus / "day1.jsonl").unlink()
    write(corpus / "day2.jsonl", "b1")
    report = sched()
    assert (report.state, report.scan.queued) == ("ok", 1)
    assert report.scan.problems == [f"{corpus}/day1.jsonl: deleted (or no longer matches the glob)"]
    assert sched().scan.problems == []  # reported once


def test_a_new_model_version_reprocesses_the_corpus_only_when_asked(sched, migrated_db, redis_url, corpus):
    from lstmq.settings import get_settings

    sched()
    install_fake_model(get_settings().user_model_dir, "tiny-clf", "classifier")  # same name, new files
    (get_settings().user_model_dir / "tiny-clf" / "config.json").write_text(
        json.dumps({"kind": "classifier", "labels": ["a", "b", "c"], "max_tokens": 16})
    )
    assert sched().scan.queued == 0
    again = sched(trigger="reprocess", reprocess=True)
    assert (again.scan.queued, again.scan.files_read) == (3, 1)
    assert sched(trigger="reprocess", reprocess=True).scan.queued == 0
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 2, "a2": 2, "a3": 2})


def test_a_missing_model_fails_the_run_and_the_next_run_reads_the_same_lines(sched, migrated_db, redis_url):
    import shutil

    from lstmq.settings import get_settings

    folder = get_settings().user_model_dir / "tiny-clf"
    shutil.move(folder, folder.with_name("away"))
    failed = sched()
    assert failed.state == "failed" and "unknown model 'tiny-clf'" in failed.error
    shutil.move(folder.with_name("away"), folder)
    assert sched().scan.queued == 3


def test_a_run_that_died_before_queueing_is_sent_once_and_queued_by_the_next_run(
    sched, migrated_db, redis_url, monkeypatch
):
    import lstmq.producer.schedules.enqueue as queueing

    real = queueing.mark_recorded
    monkeypatch.setattr(queueing, "mark_recorded", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        sched()
    # Recorded whole in one transaction: the dispatcher may send it before the run marks it queued.
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1, "a3": 1})
    monkeypatch.setattr(queueing, "mark_recorded", real)
    report = sched()  # nothing new to read; the recorded job is marked queued now
    assert report.scan.queued == 0
    assert queued_texts(migrated_db, redis_url) == Counter({"a1": 1, "a2": 1, "a3": 1})
    with session_scope(migrated_db) as session:
        assert session.scalars(select(Job.state)).all() == ["queued"]


def test_runs_started_together_queue_each_document_once(sched, migrated_db, redis_url, corpus):
    for n in range(20):
        write(corpus / f"f{n}.jsonl", *(f"t{n}-{i}" for i in range(50)))
    barrier, reports = threading.Barrier(4), []

    def go():
        barrier.wait()
        reports.append(sched())

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = queued_texts(migrated_db, redis_url)
    assert len(counts) == 1003 and set(counts.values()) == {1}
    assert sum(r.scan.queued for r in reports) == 1003
    assert {r.state for r in reports} <= {"ok", "skipped"}


def test_a_live_lease_makes_a_second_run_a_recorded_skip(sched, migrated_db):
    from lstmq.producer.schedules.run import claim

    claim(migrated_db, sched.id, "someone-else", "manual")
    report = sched()
    assert report.state == "skipped"
    with session_scope(migrated_db) as session:
        states = session.scalars(select(ScheduleRun.state).order_by(ScheduleRun.id)).all()
        assert states == ["running", "skipped"]
        assert get_schedule(session, "dumps").lease_token == "someone-else"


def test_a_run_reads_at_most_its_share_of_new_lines_and_the_next_run_goes_on(
    sched, migrated_db, redis_url, corpus, monkeypatch
):
    import lstmq.producer.schedules.scan as scanning

    monkeypatch.setattr(scanning, "MAX_RUN_LINES", 2)
    write(corpus / "day2.jsonl", "b1", "b2")
    reports = [sched() for _ in range(4)]
    assert [r.scan.queued for r in reports] == [2, 2, 1, 0]
    assert "read the most one run reads (2 new lines)" in reports[0].scan.problems[0]
    assert queued_texts(migrated_db, redis_url) == Counter({t: 1 for t in ("a1", "a2", "a3", "b1", "b2")})


def test_a_paused_schedule_is_not_run_by_beat_but_can_be_run_by_hand(sched, migrated_db):
    from lstmq.producer.schedules.store import set_paused

    with session_scope(migrated_db) as session:
        set_paused(session, "dumps", True)
    assert sched(trigger="beat").run_id is None
    assert sched(trigger="manual").scan.queued == 3
    with session_scope(migrated_db) as session:
        assert session.scalars(select(ScheduleRun.trigger)).all() == ["manual"]


def test_a_file_reaching_outside_the_corpus_roots_is_skipped_and_reported(
    sched, migrated_db, corpus, tmp_path, monkeypatch
):
    from lstmq.settings import get_settings

    secret = tmp_path / "secret.jsonl"
    write(secret, "do not read me")
    (corpus / "link.jsonl").symlink_to(secret)
    monkeypatch.setenv("LSTMQ_CORPUS_ROOTS", str(corpus))
    get_settings.cache_clear()
    report = sched()
    assert report.scan.queued == 3
    assert report.scan.problems == [f"{corpus}/link.jsonl: outside LSTMQ_CORPUS_ROOTS, not read"]
