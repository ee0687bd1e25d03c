"""Fault drills: each fault in the middle of a job, on real PostgreSQL, a Redis server
started by the test on its own port (with or without persistence) and real workers. Each drill
asserts that every document is done exactly once (one result row each, no ``done`` without a
row) with no operator command, within a generous bound after the fault ends, and prints how
long that took. Stalls are detected after ``STALL_S`` (``LSTMQ_STALL_AFTER_S``) instead of the
default minute, so the drills stay short; the visibility timeout keeps its 4 h default, so no
recovery below comes from Redis redelivering.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, func, select, text

from lstmq.db.engine import engine_for, get_engine
from lstmq.db.migrate import upgrade
from lstmq.db.schema import Classification, Document, Image
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.records import Record
from lstmq.settings import get_settings
from tests.support.inputs import corpus
from tests.support.jobs import status_counts
from tests.support.postgres import empty_postgres, set_connections
from tests.support.stacks import Stack, open_stack
from tests.support.waiting import wait_until

STALL_S = 5
RECOVERY_BOUND_S = 120  # the bound after the fault ends; a timeout, not a claim
DOCS = 300
BATCH = 10
pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test alone: stopped, killed and restarted at will."""

    def __init__(self, folder: Path, persistent: bool):
        self.folder, self.persistent, self.port = folder, persistent, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        argv += ["--save", "", "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always"]
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - owned by the server process
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._pong, 10, "redis-server to answer")

    def _pong(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=1).ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """A clean shutdown (the AOF, when on, is complete)."""
        self.proc.terminate()
        self.proc.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL: without persistence every queued message is gone."""
        self.proc.kill()
        self.proc.wait(timeout=20)


@pytest.fixture
def private_redis(tmp_path, request) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis", persistent=getattr(request, "param", True))
    server.start()
    yield server
    if server.proc.poll() is None:
        server.kill()


@contextmanager
def drill_settings(home: Path, **settings: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("LSTMQ_") and not k.startswith("LSTMQ_TEST_")]:
            mp.delenv(key)
        for key, value in {"home": str(home), "stall_after_s": str(STALL_S), **settings}.items():
            mp.setenv(f"LSTMQ_{key.upper()}", value)
        get_settings.cache_clear()
        engine_for.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()
            engine_for.cache_clear()


@pytest.fixture
def drill(pg_url, private_redis, tmp_path) -> Iterator[Stack]:
    """PostgreSQL + the private Redis + workers started by the drill (killed at the end)."""
    home = tmp_path / "home"
    home.mkdir()
    with drill_settings(home, database_url=empty_postgres(pg_url), broker_url=private_redis.url):
        stack = Stack("services", home, get_engine(), make_celery())
        upgrade(stack.engine)
        try:
            yield stack
        finally:
            for worker in stack.workers:
                worker.kill()
            stack.engine.dispose()


def submit(stack: Stack, tmp_path: Path, n: int = DOCS, name: str = "in.jsonl"):
    return stack.submit(corpus(tmp_path / name, n), batch_size=BATCH)


def progressed(stack: Stack, job_id: str, at_least: int = 1) -> bool:
    return status_counts(stack.engine, job_id).get("done", 0) >= at_least


def assert_done_once(stack: Stack, job_id: str, n: int = DOCS, results=Classification) -> None:
    """One result row per document, every document done, no ``done`` without a row."""
    with stack.engine.connect() as conn:
        per_doc = dict(
            conn.execute(
                select(results.document_id, func.count())
                .join(Document, Document.id == results.document_id)
                .where(Document.job_id == job_id)
                .group_by(results.document_id)
            ).all()
        )
        rowless = conn.scalar(
            select(func.count())
            .select_from(Document)
            .outerjoin(results, results.document_id == Document.id)
            .where(Document.job_id == job_id, Document.status == "done", results.document_id.is_(None))
        )
    assert len(per_doc) == n and set(per_doc.values()) == {1}
    assert status_counts(stack.engine, job_id) == {"done": n}
    assert rowless == 0


def finish_after_fault(stack: Stack, job_id: str, drill_name: str, n: int = DOCS, results=Classification) -> float:
    """Wait for the job after the fault has ended; returns (and prints) how long it took."""
    ended = time.monotonic()
    stack.wait_finished(job_id, timeout_s=RECOVERY_BOUND_S)
    took = time.monotonic() - ended
    print(f"\nDRILL {drill_name}: finished {took:.1f} s after the fault ended")
    try:
        assert_done_once(stack, job_id, n, results)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{stack.logs()}") from None
    return took


# --- the drills ---------------------------------------------------------------------------------


def test_database_refusing_connections_for_20_s(drill, pg_url, tmp_path):
    worker = drill.start_worker()
    worker.pause()  # every batch is taken while the database is away
    report = submit(drill, tmp_path)
    set_connections(pg_url, allowed=False)
    try:
        worker.resume()
        time.sleep(20)  # the fault: its length is the point of the drill
    finally:
        set_connections(pg_url, allowed=True)
    drill.engine.dispose()
    finish_after_fault(drill, report.job_id, "PostgreSQL refuses connections 20 s")
    assert "MaxRetriesExceeded" not in worker.log()


def test_database_backends_terminated_repeatedly(drill, pg_url, tmp_path):
    drill.start_worker()
    report = submit(drill, tmp_path)
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 15
    with admin.connect() as conn:
        while time.monotonic() < deadline:  # the fault: backends cut every half second
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            time.sleep(0.5)
    admin.dispose()
    drill.engine.dispose()
    finish_after_fault(drill, report.job_id, "PostgreSQL backends terminated repeatedly 15 s")


def test_redis_with_aof_down_for_60_s(drill, private_redis, tmp_path):
    worker = drill.start_worker()
    report = submit(drill, tmp_path)
    wait_until(lambda: progressed(drill, report.job_id), 60, "first results", interval_s=0.05)
    private_redis.stop()
    time.sleep(60)  # the fault: longer than any fixed number of reconnect attempts
    assert worker.proc.poll() is None, worker.log()[-3000:]
    private_redis.start()
    finish_after_fault(drill, report.job_id, "Redis (AOF) down 60 s")
    assert worker.log().count("broker unreachable: reconnecting") == 1  # the outage, once (not per retry)
    assert worker.log().count("broker reachable again") == 1


@pytest.mark.parametrize("private_redis", [False], indirect=True)
def test_redis_without_persistence_restarted(drill, private_redis, tmp_path):
    drill.start_worker()
    report = submit(drill, tmp_path)
    wait_until(lambda: progressed(drill, report.job_id), 60, "first results", interval_s=0.05)
    private_redis.kill()  # every queued batch is gone
    private_redis.start()
    finish_after_fault(drill, report.job_id, "Redis without persistence restarted")


def test_worker_sigkilled_mid_batch(drill, tmp_path):
    first = drill.start_worker()
    report = submit(drill, tmp_path)
    wait_until(lambda: progressed(drill, report.job_id), 60, "first results", interval_s=0.02)
    first.kill()  # SIGKILL: its batch stays unacked for the 4 h visibility timeout
    drill.start_worker()
    finish_after_fault(drill, report.job_id, "worker SIGKILLed mid-batch")


def test_worker_sigkilled_three_times_in_a_row_with_concurrency_2(drill, tmp_path):
    report = submit(drill, tmp_path)
    for kill in range(3):
        worker = drill.start_worker("--concurrency=2")
        wait_until(lambda k=kill: progressed(drill, report.job_id, 10 * (k + 1)), 60, "progress", interval_s=0.02)
        worker.kill()
    drill.start_worker("--concurrency=2")
    finish_after_fault(drill, report.job_id, "worker SIGKILLed 3 times in a row, --concurrency 2")


def test_two_producers_and_two_workers_on_one_database(drill, tmp_path):
    drill.start_worker("--hostname=one@%h")
    drill.start_worker("--hostname=two@%h")
    first, second = submit(drill, tmp_path, name="a.jsonl"), submit(drill, tmp_path, name="b.jsonl")
    drill.workers[0].kill()  # and one of the workers dies on the way
    finish_after_fault(drill, first.job_id, "two producers, two workers (one SIGKILLed): job 1")
    finish_after_fault(drill, second.job_id, "two producers, two workers (one SIGKILLed): job 2")


def test_image_folder_unwritable_during_a_render_job(drill, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from tests.support.tiny_generator import TINY_NAME, make_tiny_generator  # torch: only this drill

    make_tiny_generator(tmp_path / "models")
    images = tmp_path / "images"
    images.mkdir()
    (images / TINY_NAME).write_text("in the way")  # the fault: no image can be written
    monkeypatch.setenv("LSTMQ_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("LSTMQ_IMAGE_DIR", str(images))
    get_settings.cache_clear()
    worker = drill.start_worker()
    records = [Record(text=f"a red circle number {i}", external_id=f"c{i}", line_no=i + 1) for i in range(100)]
    report = submit_records(drill.engine, drill.app, records, task="render", model=TINY_NAME, batch_size=BATCH)
    worker.wait_for_log("cannot write images", 60)
    (images / TINY_NAME).unlink()
    finish_after_fault(drill, report.job_id, "image folder unwritable (render job)", n=100, results=Image)


def test_embedded_setup_worker_sigkilled_mid_job(request, tmp_path):
    """SQLite + the filesystem broker, which deletes a message when a worker reads it: the
    reconciler inside the next worker re-sends the batch the dead one had taken."""
    with open_stack(request, "embedded", tmp_path / "home") as stack:
        first = stack.start_worker(stall_after_s=str(STALL_S))
        report = submit(stack, tmp_path)
        wait_until(lambda: progressed(stack, report.job_id), 60, "first results", interval_s=0.02)
        first.kill()
        stack.start_worker(stall_after_s=str(STALL_S))
        finish_after_fault(stack, report.job_id, "embedded setup: worker SIGKILLed mid-job")
