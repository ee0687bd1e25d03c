"""A whole stack for end-to-end tests: settings, database, broker and worker processes.

"embedded" is SQLite + the filesystem broker (no servers); "services" is this session's
PostgreSQL database and Redis database number.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select

from lstmq.db.engine import engine_for, get_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.schema import WorkerBeat
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.settings import get_settings
from tests.support.jobs import job_finished
from tests.support.postgres import empty_postgres
from tests.support.processes import WorkerProcess, worker_env
from tests.support.waiting import wait_until

BACKENDS = ("embedded", "services")
JOB_TIMEOUT_S = 90


@dataclass
class Stack:
    """One test's (or module's) services, settings and worker processes."""

    name: str
    home: Path
    engine: Engine
    app: Celery
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, *args: str, **settings: str) -> WorkerProcess:
        log = self.home / f"worker{len(self.workers)}.log"
        # One torch thread: on a busy shared CI host, more threads spin against each other.
        worker = WorkerProcess(worker_env(**settings), log, "--threads=1", *args)
        self.workers.append(worker)
        worker.wait_ready()
        # Ready and beating: a submit from now on sees it (and sends its first window to it).
        wait_until(lambda: self._beating(worker.proc.pid), 30, f"{log.name}'s first heartbeat")
        return worker

    def _beating(self, pid: int) -> bool:
        with session_scope(self.engine) as session:
            return session.scalar(select(WorkerBeat.pid).where(WorkerBeat.pid == pid)) is not None

    def submit(self, path: Path, model: str = "news", batch_size: int = 20):
        items = read_sources(resolve_sources([str(path)]))
        return submit_records(
            self.engine, self.app, items, task="classify", model=model, batch_size=batch_size, sources=[str(path)]
        )

    def wait_finished(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
        wait_until(lambda: job_finished(self.engine, job_id), timeout_s, lambda: f"job {job_id} to finish{self.logs()}")

    def logs(self) -> str:
        return "".join(f"\n--- {w.log_path.name}:\n{w.log()[-2000:]}" for w in self.workers)


def stack_settings(request, backend: str, home: Path) -> dict[str, str]:
    """LSTMQ_* for ``backend``; LSTMQ_TEST_MODEL_DIR runs against models other than the shipped ones."""
    settings = {"home": str(home)}
    if os.environ.get("LSTMQ_TEST_MODEL_DIR"):
        settings["model_dir"] = os.environ["LSTMQ_TEST_MODEL_DIR"]
    if backend == "services":
        broker = request.getfixturevalue("redis_url")
        redis.Redis.from_url(broker).flushdb()
        settings |= {"database_url": empty_postgres(request.getfixturevalue("pg_url")), "broker_url": broker}
    return settings


@contextmanager
def open_stack(request, backend: str, home: Path) -> Iterator[Stack]:
    """Point LSTMQ_* at ``home`` (and the backend's services), migrate, yield; kill every worker
    started meanwhile. Works in any fixture scope, unlike monkeypatch."""
    settings = stack_settings(request, backend, home)
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
