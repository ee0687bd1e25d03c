"""Helpers for worker and end-to-end tests: jobs in the database, worker subprocesses, waits.

Every wait is bounded; every worker started here is killed by the fixture that started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from lstmq.contract import BatchPayload
from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_QUEUED, Classification, Document, Job

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "lstmq" / "samples"
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


def add_job(
    engine: Engine, texts: list[str], model: str = "news", task: str = "classify", state: str = JOB_QUEUED
) -> tuple[str, list[int]]:
    """Record a job and its documents the way a producer would; returns (job id, doc ids)."""
    job_id = uuid.uuid4().hex
    with session_scope(engine) as session:
        session.add(Job(id=job_id, task=task, model=model, state=state, total=len(texts)))
        session.flush()  # no ORM relationship: the job row must exist before its documents
        docs = [
            Document(
                job_id=job_id,
                external_id=str(i),
                source="test",
                record_no=i,
                line_no=i + 1,
                content_hash=f"{i:064d}",
                text=text,
            )
            for i, text in enumerate(texts)
        ]
        session.add_all(docs)
        session.flush()
        return job_id, [doc.id for doc in docs]


def batch_of(job_id: str, model: str, ids: list[int], texts: list[str]) -> BatchPayload:
    return BatchPayload.model_validate(
        {"job_id": job_id, "model": model, "docs": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]}
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


def corpus(path: Path, n: int, bad_lines: tuple[str, ...] = ()) -> Path:
    """``n`` news-like JSONL records made from the shipped samples, then ``bad_lines``."""
    texts = [json.loads(line)["text"] for line in (SAMPLES / "news.jsonl").read_text().splitlines()]
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"doc-{i}", "text": f"{texts[i % len(texts)]} Update {i}."}) + "\n")
        out.writelines(line + "\n" for line in bad_lines)
    return path


class WorkerProcess:
    """A real ``lstmq worker`` subprocess with its own environment and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lstmq", "worker", "--loglevel=info", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

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


# --- A whole stack: settings, database, broker and worker processes ---------------------------

BACKENDS = ("embedded", "services")  # SQLite + filesystem broker | PostgreSQL + Redis


@dataclass
class Stack:
    """One test's (or module's) services, settings and worker processes."""

    name: str
    home: Path
    engine: Engine
    app: object
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, *args: str, **settings: str) -> WorkerProcess:
        log = self.home / f"worker{len(self.workers)}.log"
        # One torch thread: on a busy shared CI host, more threads spin against each other.
        worker = WorkerProcess(worker_env(**settings), log, "--threads=1", *args)
        self.workers.append(worker)
        return worker.wait_ready()

    def submit(self, path: Path, model: str = "news", batch_size: int = 20):
        from lstmq.readers.sources import read_sources, resolve_sources
        from producer.submit import submit_records

        items = read_sources(resolve_sources([str(path)]))
        return submit_records(
            self.engine, self.app, items, task="classify", model=model, batch_size=batch_size, sources=[str(path)]
        )

    def wait_finished(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
        logs = "".join(f"\n--- {w.log_path.name}:\n{w.log()[-2000:]}" for w in self.workers)
        wait_until(lambda: job_finished(self.engine, job_id), timeout_s, what=f"job {job_id} to finish{logs}")


def empty_postgres(url: str) -> str:
    """Empty the session's PostgreSQL database so a test starts from nothing."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@contextmanager
def open_stack(request, backend: str, home: Path) -> Iterator[Stack]:
    """Point LSTMQ_* at ``home`` (and, for "services", the session's PostgreSQL database and
    Redis db), migrate, yield; kill every worker started meanwhile. Works in any fixture scope.
    LSTMQ_TEST_MODEL_DIR runs against models other than the shipped ones."""
    import redis

    from lstmq.db.engine import engine_for, get_engine
    from lstmq.db.migrate import upgrade
    from lstmq.queue import make_celery
    from lstmq.settings import get_settings

    settings = {"home": str(home)}
    if os.environ.get("LSTMQ_TEST_MODEL_DIR"):
        settings["model_dir"] = os.environ["LSTMQ_TEST_MODEL_DIR"]
    if backend == "services":
        broker = request.getfixturevalue("redis_url")
        redis.Redis.from_url(broker).flushdb()
        settings |= {"database_url": empty_postgres(request.getfixturevalue("pg_url")), "broker_url": broker}
    home.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("LSTMQ_") and not k.startswith("LSTMQ_TEST_")]:
            mp.delenv(key)
        for key, value in settings.items():
            mp.setenv(f"LSTMQ_{key.upper()}", value)
        get_settings.cache_clear()
        engine_for.cache_clear()
        stack = Stack(backend, home, get_engine(), make_celery())
        upgrade(stack.engine)
        try:
            yield stack
        finally:
            for worker in stack.workers:
                worker.kill()  # a warm shutdown costs seconds; recovery has tests of its own
            stack.engine.dispose()
            get_settings.cache_clear()
            engine_for.cache_clear()
