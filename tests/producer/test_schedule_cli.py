"""`lstmq schedule ...` as a user types it: one-line errors at add time, list/pause/resume/
remove/run/history, and scheduled jobs seen by `lstmq jobs --json` and `lstmq status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmq.cli import main


def lstmq(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path, migrated_db, celery_app, models, monkeypatch) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    monkeypatch.chdir(tmp_path)
    return folder


ADD = ("schedule", "add", "dumps", "--path", "corpus/*.jsonl", "--model", "tiny-clf")


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--every", "2s", "--path", "nowhere/*.jsonl"), "error: --path 'nowhere/*.jsonl' matches no file"),
        (("--every", "2s", "--model", "nope"), "error: unknown model 'nope'; installed: "),
        (
            ("--every", "2s", "--task", "render"),
            "error: model 'tiny-clf' is a classifier; task render needs a generator",
        ),
        (("--every", "2s", "--task", "summarise"), "error: unknown task 'summarise'"),
        (
            (
                "--every",
                "5 minutes",
            ),
            "error: invalid interval '5 minutes'",
        ),
        (
            (
                "--cron",
                "0 25 * * *",
            ),
            "error: invalid cron expression '0 25 * * *': Invalid end range: 25 > 23.",
        ),
        ((), "error: give exactly one of --every"),
        (("--every", "1m", "--format", "xml"), "error: unknown format 'xml'"),
    ],
)
def test_add_refuses_bad_input_with_one_line_and_stores_nothing(capsys, corpus, extra, message):
    code, out, err = lstmq(capsys, *ADD, *extra)
    assert code != 0 and err.startswith(message) and err.count("\n") == 1
    assert json.loads(lstmq(capsys, "schedule", "list", "--json")[1]) == []


def test_a_schedule_is_added_listed_paused_resumed_and_removed(capsys, corpus):
    code, out, _ = lstmq(capsys, *ADD, "--cron", "*/15 * * * *")
    assert code == 0 and out.startswith("schedule dumps: classify with tiny-clf, cron */15 * * * *, files /")
    assert (
        lstmq(capsys, *ADD, "--every", "1h")[2]
        == "error: a schedule named 'dumps' exists; remove it first or pick another name\n"
    )
    [listed] = json.loads(lstmq(capsys, "schedule", "list", "--json")[1])
    assert (listed["name"], listed["path"], listed["cron"], listed["paused"]) == (
        "dumps",
        str(corpus / "*.jsonl"),
        "*/15 * * * *",
        False,
    )
    lstmq(capsys, "schedule", "pause", "dumps")
    assert json.loads(lstmq(capsys, "schedule", "list", "--json")[1])[0]["paused"] is True
    lstmq(capsys, "schedule", "resume", "dumps")
    assert "dumps  active  classify tiny-clf  cron */15 * * * *" in lstmq(capsys, "schedule", "list")[1]
    assert lstmq(capsys, "schedule", "remove", "dumps")[0] == 0
    assert (
        lstmq(capsys, "schedule", "pause", "dumps")[2]
        == "error: no schedule named 'dumps' (see `lstmq schedule list`)\n"
    )


def test_run_now_and_history_and_jobs_know_the_schedule(capsys, corpus):
    lstmq(capsys, *ADD, "--every", "6h")
    code, out, _ = lstmq(capsys, "schedule", "run", "dumps")
    assert code == 0 and "run ok; 1 files (1 read), 2 queued, 0 already processed, 0 rejected; job " in out
    job_id = out.strip().rsplit(" ", 1)[-1]
    assert "0 queued" in lstmq(capsys, "schedule", "run", "dumps")[1]
    runs = json.loads(lstmq(capsys, "schedule", "history", "dumps", "--json")[1])
    assert [(r["trigger"], r["queued"], r["job"]) for r in runs] == [("manual", 0, None), ("manual", 2, job_id)]
    assert runs[1]["documents"] == {"pending": 2, "done": 0, "failed": 0}
    jobs = json.loads(lstmq(capsys, "jobs", "--json")[1])
    assert [(j["id"], j["schedule"]) for j in jobs] == [(job_id, "dumps")]
    status = json.loads(lstmq(capsys, "status", job_id, "--json")[1])
    assert (status["total"], status["pending"], status["schedule"]) == (2, 2, "dumps")
    text = lstmq(capsys, "schedule", "history", "dumps")[1]
    assert f"job {job_id}: done 0  pending 2  failed 0" in text


def test_history_reports_corrupt_records_and_deleted_files(capsys, corpus):
    lstmq(capsys, *ADD, "--every", "6h")
    lstmq(capsys, "schedule", "run", "dumps")
    (corpus / "a.jsonl").unlink()
    (corpus / "b.jsonl").write_text('{"text": "fine"}\nnot json\n')
    assert "1 queued" in lstmq(capsys, "schedule", "run", "dumps")[1]
    text = lstmq(capsys, "schedule", "history", "dumps", "--limit", "1")[1]
    assert f"  ! {corpus}/b.jsonl:2: malformed JSON" in text
    assert f"  ! {corpus}/a.jsonl: deleted (or no longer matches the glob)" in text


def test_the_scheduler_refuses_to_start_without_redis(capsys, corpus, monkeypatch):
    from lstmq.settings import get_settings

    monkeypatch.delenv("LSTMQ_BROKER_URL")
    get_settings.cache_clear()
    code, _, err = lstmq(capsys, "scheduler")
    assert code == 2 and err.startswith("error: lstmq scheduler needs Redis (LSTMQ_BROKER_URL=redis://...)")


def test_add_refuses_a_glob_outside_the_corpus_roots(capsys, corpus, tmp_path, monkeypatch):
    from lstmq.settings import get_settings

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.jsonl").write_text('{"text": "secret"}\n')
    monkeypatch.setenv("LSTMQ_CORPUS_ROOTS", str(corpus))
    get_settings.cache_clear()
    code, _, err = lstmq(
        capsys, "schedule", "add", "x", "--path", str(elsewhere / "*.jsonl"), "--model", "tiny-clf", "--every", "1h"
    )
    assert code == 2 and err == (
        f"error: --path '{elsewhere}/*.jsonl' reaches {elsewhere}, outside LSTMQ_CORPUS_ROOTS ({corpus})\n"
    )
    assert lstmq(capsys, *ADD, "--every", "1h")[0] == 0


def test_the_schedule_modules_and_the_scheduler_never_import_torch():
    import subprocess
    import sys

    modules = [
        "lstmq.producer.schedules.cli",
        "lstmq.producer.schedules.beat",
        "lstmq.producer.schedules.run",
        "lstmq.bench.schedule",
    ]
    code = (
        f"import sys\nfor name in {modules!r}: __import__(name)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
