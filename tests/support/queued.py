"""What the producer queued, read straight from Redis without running a worker.

kombu's Redis transport keeps each queue as a Redis list named after the queue, holding one
JSON envelope per message (LPUSH on send, so the oldest message is last); the body is the
base64 of Celery's protocol-2 ``[args, kwargs, embed]``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter

import redis
from sqlalchemy import Engine, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import Document
from tests.support.dispatch import send_all


def queued_payloads(redis_url: str, queue: str = "lstmq.classify") -> list[dict]:
    """The BatchPayload dicts waiting in ``queue``, oldest first."""
    raw = redis.Redis.from_url(redis_url).lrange(queue, 0, -1)
    payloads = []
    for envelope in reversed(raw):
        message = json.loads(envelope)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        payloads.append(args[0])
    return payloads


def queued_doc_ids(redis_url: str, queue: str = "lstmq.classify") -> list[int]:
    return [doc_id for payload in queued_payloads(redis_url, queue) for doc_id in payload["ids"]]


def queued_texts(engine: Engine, redis_url: str) -> Counter:
    """text -> how many times a document with that text waits in the classify queue, once a
    dispatcher with room for everything has sent what waits to be sent."""
    send_all(engine)
    ids = queued_doc_ids(redis_url)
    with session_scope(engine) as session:
        text_of = dict(session.execute(select(Document.id, Document.text).where(Document.id.in_(ids))).all())
    return Counter(text_of[i] for i in ids)
