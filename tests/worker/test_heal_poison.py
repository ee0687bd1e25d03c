"""Poison and forged messages, pushed straight into the Redis list kombu consumes: each is logged
and dropped or refused, the worker keeps running, the genuine batches behind them are done, a
batch naming another model writes no result (its documents are then re-sent by the reconciler,
genuinely), and texts in a message are never classified.
A poison batch that kills a threads worker, and with it the batches running beside it, is given
up; those batches are not."""

from __future__ import annotations

import base64
import copy
import json
import pickle
import zlib

import pytest
import redis
from sqlalchemy import Engine, func, select, text

from lstmq.contract import QUEUES
from lstmq.db.schema import Classification, Document
from lstmq.queue import send_batch
from lstmq.worker.cli import choose_pool
from lstmq.worker.heal.redeliveries import MAX_REDELIVERIES
from tests.support.inputs import corpus
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts
from tests.support.locks import lock_waiters
from tests.support.stacks import open_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

QUEUE = QUEUES["classify"]
BOMB_MIB = 512
THREADS_WORKER = ("--device=cpu", "--concurrency=2")  # one process, two batches at once


@pytest.fixture
def stack(request, tmp_path):
    with open_stack(request, "services", tmp_path / "home") as stack:
        yield stack


def envelope_of(stack, client: redis.Redis) -> dict:
    """A genuine message as kombu stores it, taken back out of the queue to be tampered with."""
    job_id, ids = add_job(stack.engine, ["a template"], dispatched=True)
    send_batch(stack.app, "classify", batch_of(job_id, "news", ids, ["a template"]))
    return json.loads(client.rpop(QUEUE))


def with_body(envelope: dict, body: bytes, **changes) -> bytes:
    message = copy.deepcopy(envelope)
    message["body"] = base64.b64encode(body).decode()
    for key, value in changes.items():  # task and compression are headers; the rest top-level
        (message["headers"] if key in ("task", "compression") else message)[key] = value
    return json.dumps(message).encode()


def zlib_bomb(mib: int) -> bytes:
    packer, chunk = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(mib)) + packer.flush()


def poison(envelope: dict) -> dict[str, bytes]:
    args = lambda *a, **kw: json.dumps([list(a), kw, {}]).encode()  # noqa: E731
    return {
        "non-JSON": b"\x00\xffnot json at all",
        "JSON, not an envelope": b"[1, 2, 3]",
        "envelope missing fields": json.dumps({"body": "e30="}).encode(),
        "body not base64": json.dumps({**envelope, "body": "***"}).encode(),
        "compressed bomb": with_body(envelope, zlib_bomb(BOMB_MIB), compression="application/x-gzip"),
        "oversize": with_body(envelope, b"x" * (40 << 20)),
        "pickle": with_body(envelope, pickle.dumps(([], {}, {})), **{"content-type": "application/x-python-serialize"}),
        "unknown task": with_body(envelope, args({}), task="lstmq.nope"),
        "no arguments": with_body(envelope, args()),
        "two arguments": with_body(envelope, args({}, {})),
        "bad payload": with_body(envelope, args({"job_id": 1, "ids": "x"})),
        "payload not a dict": with_body(envelope, args("text")),
    }


def test_poison_messages_are_dropped_and_the_batches_behind_them_are_done(stack, redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    for raw in poison(envelope_of(stack, client)).values():
        client.lpush(QUEUE, raw)  # kombu sends with LPUSH and takes with BRPOP: these come first
    report = stack.submit(corpus(tmp_path / "in.jsonl", 40), batch_size=10)
    worker = stack.start_worker()
    stack.wait_finished(report.job_id)

    assert worker.proc.poll() is None, worker.log()[-3000:]
    per_doc = results_per_document(stack.engine, report.job_id)
    assert len(per_doc) == 40 and set(per_doc.values()) == {1}
    log = worker.log()
    assert log.count("malformed message dropped") == 4  # non-JSON, not an envelope, missing fields, body
    assert "message refused: application/x-gzip body" in log and "message refused: oversize" in log
    assert "Received unregistered task of type 'lstmq.nope'" in log


def test_a_batch_naming_another_model_is_refused_and_writes_no_result(stack):
    texts = [f"a genuine document {i}" for i in range(4)]
    job_id, ids = add_job(stack.engine, texts, dispatched=True)
    send_batch(stack.app, "classify", batch_of(job_id, "news-forged", ids))
    worker = stack.start_worker(stall_after_s="30")  # no re-send before the check below
    worker.wait_for_log("batch refused", 60)

    with stack.engine.connect() as conn:
        written = conn.scalar(
            select(func.count()).select_from(Classification).join(Document).where(Document.job_id == job_id)
        )
    assert written == 0 and status_counts(stack.engine, job_id) == {"pending": 4}
    assert "is not the job's model 'news'" in worker.log()


def test_texts_a_message_carries_are_never_classified(stack):
    """An older lstmq's message lists texts: a worker classifies the recorded ones instead, so
    forged texts for real ids get what the recorded texts get in a genuine batch."""
    texts = [f"a genuine document {i}" for i in range(4)]
    forged_job, forged_ids = add_job(stack.engine, texts, dispatched=True)
    genuine_job, genuine_ids = add_job(stack.engine, texts, dispatched=True)
    older = {"job_id": forged_job, "model": "news", "docs": [{"id": i, "text": "World: forged"} for i in forged_ids]}
    send_batch(stack.app, "classify", older)
    send_batch(stack.app, "classify", batch_of(genuine_job, "news", genuine_ids))
    stack.start_worker()
    stack.wait_finished(forged_job)
    stack.wait_finished(genuine_job)
    assert results_of(stack.engine, forged_job) == results_of(stack.engine, genuine_job)


def results_of(engine: Engine, job_id: str) -> list[tuple[str, float]]:
    stmt = select(Classification.label, Classification.score).join(Document).where(Document.job_id == job_id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt.order_by(Document.id))]


class RowsHeld:
    """A job's document rows locked FOR UPDATE by one session: a worker writing them waits, and
    is seen waiting for this session (``pid``). Reads go on."""

    def __init__(self, engine: Engine, job_id: str):
        self.conn = engine.connect()
        self.conn.execute(select(Document.id).where(Document.job_id == job_id).with_for_update())
        self.pid = self.conn.scalar(text("SELECT pg_backend_pid()"))

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def writing(engine: Engine, held: dict[str, RowsHeld]) -> set[str]:
    """The batches (keys of ``held``) whose write waits for their rows: batches running now."""
    query = text(
        "SELECT pg_blocking_pids(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        blockers = {pid for pids in conn.scalars(query) for pid in pids}
    return {name for name, rows in held.items() if rows.pid in blockers}


def taken(app) -> dict[str, tuple[bytes, str]]:
    """The batches workers took and never acknowledged (kombu's unacked hash), by job id:
    (delivery tag, task id)."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        entries = channel.client.hgetall(channel.unacked_key)
    found = {}
    for tag, raw in entries.items():
        message = json.loads(raw)[0]  # [message, exchange, routing key]
        job_id = json.loads(base64.b64decode(message["body"]))[0][0]["job_id"]
        found[job_id] = (tag, message["headers"]["id"])
    return found


def put_back(app, tag: bytes) -> None:
    """What Redis does with a dead worker's batch once the visibility timeout (4 h) has passed,
    done now with kombu's own restore: back in its queue, marked redelivered."""
    with app.connection_for_write() as conn:
        conn.default_channel.qos.restore_by_tag(tag)


def kill(stack, worker) -> None:
    """SIGKILL ``worker`` and end its database sessions (stuck in their writes, they would keep
    their locks)."""
    worker.kill()
    with stack.engine.connect() as conn:
        for pid in lock_waiters(stack.engine):
            conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})


@pytest.mark.skipif(
    choose_pool("cpu", 2) != "threads", reason=f"lstmq worker {' '.join(THREADS_WORKER)} is not a threads pool"
)
def test_a_threads_worker_gives_up_the_batch_that_kills_it_not_the_batch_beside_it(stack):
    """Each death of the worker is the test's SIGKILL while the poison batch runs (stuck at its
    write). The first takes the innocent batch with it, both running in one process. Then each
    time the poison batch comes back, runs, and the innocent one comes back beside it before the
    next death: it waits for its turn (a redelivered batch runs alone), so only the poison batch
    is charged with the deaths that follow."""
    batches = {}
    for name in ("poison", "innocent"):
        texts = [f"an {name} document {i}" for i in range(4)]
        job_id, ids = add_job(stack.engine, texts, dispatched=True)
        batches[name] = batch_of(job_id, "news", ids)
    poison_id, innocent_id = batches["poison"].job_id, batches["innocent"].job_id
    held = {name: RowsHeld(stack.engine, batch.job_id) for name, batch in batches.items()}
    try:
        for batch in batches.values():
            send_batch(stack.app, "classify", batch)
        worker = stack.start_worker(*THREADS_WORKER)
        # Both running: the second's write may wait for the first's (the model version row).
        wait_until(lambda: len(lock_waiters(stack.engine)) == 2, 90, lambda: f"both batches running{stack.logs()}")
        kill(stack, worker)

        for _ in range(2, MAX_REDELIVERIES + 1):  # deaths 2 to MAX_REDELIVERIES
            worker, dead = stack.start_worker(*THREADS_WORKER), taken(stack.app)
            assert set(dead) == {poison_id, innocent_id}
            put_back(stack.app, dead[poison_id][0])
            wait_until(
                lambda: writing(stack.engine, held) == {"poison"}, 90, lambda: f"the poison batch running{stack.logs()}"
            )
            tag, task_id = dead[innocent_id]
            put_back(stack.app, tag)
            worker.wait_for_log(f"task {task_id} was redelivered: it runs alone", 60)  # waits beside it
            kill(stack, worker)

        for rows in held.values():  # giving up writes too
            rows.release()
        stack.start_worker(*THREADS_WORKER)
        for tag, _ in taken(stack.app).values():
            put_back(stack.app, tag)
        for job_id in (poison_id, innocent_id):
            stack.wait_finished(job_id)
    finally:
        for rows in held.values():
            rows.release()

    with stack.engine.connect() as conn:
        errors = conn.scalars(select(Document.error).where(Document.job_id == poison_id)).all()
    assert status_counts(stack.engine, poison_id) == {"failed": 4}
    assert all(error.startswith(f"batch given up: its worker died {MAX_REDELIVERIES} times") for error in errors)
    assert status_counts(stack.engine, innocent_id) == {"done": 4}
    assert set(results_per_document(stack.engine, innocent_id).values()) == {1}
