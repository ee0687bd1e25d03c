"""Helpers for the scheduler tests: `lstmq scheduler` subprocesses, bounded waits, corpus files.

Every wait is bounded; every scheduler started through the ``start`` fixture is stopped
(SIGTERM, then SIGKILL) in its teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from producer_fixtures import queued_payloads
from sqlalchemy import select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document, ScheduleRun

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class Scheduler:
    def __init__(self, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lstmq", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 20) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start(tmp_path):
    started: list[Scheduler] = []

    def start_one() -> Scheduler:
        started.append(Scheduler(tmp_path / f"scheduler{len(started)}.log"))
        return started[-1]

    yield start_one
    for proc in started:
        proc.stop()


def write(path: Path, *texts: str, mode: str = "a") -> None:
    with path.open(mode) as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in texts)


def beat_runs(engine) -> list[ScheduleRun]:
    with session_scope(engine) as session:
        return list(session.scalars(select(ScheduleRun).where(ScheduleRun.trigger == "beat").order_by(ScheduleRun.id)))


def queued_texts(engine, redis_url) -> Counter:
    ids = [doc["id"] for payload in queued_payloads(redis_url) for doc in payload["docs"]]
    with session_scope(engine) as session:
        text_of = dict(session.execute(select(Document.id, Document.text).where(Document.id.in_(ids))).all())
    return Counter(text_of[i] for i in ids)
