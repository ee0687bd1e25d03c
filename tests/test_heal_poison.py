"""Poison and forged messages, pushed straight into the Redis list kombu consumes: each is logged
and dropped or refused, the worker keeps running, the genuine batches behind them are done, and
a forged batch writes no result (its documents are then re-sent by the reconciler, genuinely)."""

from __future__ import annotations

import base64
import copy
import json
import pickle
import zlib

import pytest
import redis
from sqlalchemy import func, select

from lstmq.contract import QUEUES
from lstmq.db.schema import Classification, Document
from lstmq.queue import send_batch
from tests.support.inputs import corpus
from tests.support.jobs import add_job, batch_of, results_per_document, status_counts
from tests.support.stacks import open_stack

QUEUE = QUEUES["classify"]
BOMB_MIB = 512


@pytest.fixture
def stack(request, tmp_path):
    with open_stack(request, "services", tmp_path / "home") as stack:
        yield stack


def envelope_of(stack, client: redis.Redis) -> dict:
    """A genuine message as kombu stores it, taken back out of the queue to be tampered with."""
    job_id, ids = add_job(stack.engine, ["a template"])
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
        "bad payload": with_body(envelope, args({"job_id": 1, "docs": "x"})),
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


def test_forged_batches_are_refused_and_write_no_result(stack):
    texts = [f"a genuine document {i}" for i in range(4)]
    job_id, ids = add_job(stack.engine, texts)
    send_batch(stack.app, "classify", batch_of(job_id, "news-forged", ids, texts))  # another model
    send_batch(stack.app, "classify", batch_of(job_id, "news", ids, ["World: forged label"] * 4))
    worker = stack.start_worker(stall_after_s="30")  # no re-send before the check below
    worker.wait_for_log("batch refused", 60, count=2)

    with stack.engine.connect() as conn:
        written = conn.scalar(
            select(func.count()).select_from(Classification).join(Document).where(Document.job_id == job_id)
        )
    assert written == 0 and status_counts(stack.engine, job_id) == {"pending": 4}
    assert "is not the job's model 'news'" in worker.log()
    assert f"the text of document {ids[0]} is not the recorded one" in worker.log()
