"""Helpers for worker and end-to-end tests: jobs in the database, worker subprocesses, waits.

Every wait is bounded; every worker started here is killed by the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select

from lstmq.contract import BatchPayload
from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_QUEUED, Classification, Document, Job

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60
JOB_TIMEOUT_S = 90


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def add_job(engine: Engine, texts: list[str], model: str = "news", task: str = "classify",
            state: str = JOB_QUEUED) -> tuple[str, list[int]]:
    """Record a job and its documents the way a producer would; returns (job id, doc ids)."""
    job_id = uuid.uuid4().hex
    with session_scope(engine) as session:
        session.add(Job(id=job_id, task=task, model=model, state=state, total=len(texts)))
        session.flush()  # no ORM relationship: the job row must exist before its documents
        docs = [
            Document(job_id=job_id, external_id=str(i), source="test", record_no=i, line_no=i + 1,
                     content_hash=f"{i:064d}", text=text)
            for i, text in enumerate(texts)
        ]
        session.add_all(docs)
        session.flush()
        return job_id, [doc.id for doc in docs]


def batch_of(job_id: str, model: str, ids: list[int], texts: list[str]) -> BatchPayload:
    return BatchPayload.model_validate(
        {"job_id": job_id, "model": model, "docs": [{"id": i, "text": t} for i, t in zip(ids, texts)]}
    )


def status_counts(engine: Engine, job_id: str) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Document.status, func.count()).where(Document.job_id == job_id).group_by(Document.status)
        ).all()
    return Counter(dict(rows))


def results_per_document(engine: Engine, job_id: str) -> Counter:
    """document id -> number of classification rows (every value must be 1)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Classification.document_id, func.count())
            .join(Document, Document.id == Classification.document_id)
            .where(Document.job_id == job_id)
            .group_by(Classification.document_id)
        ).all()
    return Counter(dict(rows))


def job_finished(engine: Engine, job_id: str) -> bool:
    return status_counts(engine, job_id).get("pending", 0) == 0


class WorkerProcess:
    """A real ``lstmq worker`` subprocess with its own environment and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lstmq", "worker", "--loglevel=info", *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> WorkerProcess:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout_s, what="worker ready")
        return self

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (no chance to ack or clean up)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout_s: float = 20) -> None:
        """Warm shutdown (SIGTERM), SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def worker_env(**settings: str) -> dict[str, str]:
    """This process's environment (its LSTMQ_* set by the ``lstmq_env`` fixture), plus overrides."""
    env = dict(os.environ)
    env.update({f"LSTMQ_{key.upper()}": str(value) for key, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env
