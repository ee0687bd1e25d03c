"""Fixtures for the producer tests: installed (tiny, fake-weight) models, a Celery app on
the test's Redis database, and a way to read what was queued without running a worker.

kombu's Redis transport keeps each queue as a Redis list named after the queue, holding one
JSON envelope per message (LPUSH on send, so the oldest message is last); the body is the
base64 of Celery's protocol-2 ``[args, kwargs, embed]``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def install_fake_model(folder: Path, name: str, kind: str) -> str:
    """A structurally valid artifact (enough for the producer's checks; no real weights)."""
    import numpy as np
    from safetensors.numpy import save_file

    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(target / "model.safetensors"))
    config = {"kind": kind, "labels": ["neg", "pos"] if kind == "classifier" else [], "max_tokens": 16}
    (target / "config.json").write_text(json.dumps(config))
    (target / "tokenizer.json").write_text("{}")
    return name


@pytest.fixture
def models(migrated_db):
    """Names of an installed classifier and generator in this test's LSTMQ_HOME."""
    from lstmq.settings import get_settings

    folder = get_settings().user_model_dir
    return {
        "classify": install_fake_model(folder, "tiny-clf", "classifier"),
        "render": install_fake_model(folder, "tiny-gen", "generator"),
    }


@pytest.fixture
def celery_app(migrated_db, redis_url, monkeypatch):
    """A real Celery app publishing to this session's Redis database (emptied first)."""
    import redis

    from lstmq.queue import make_celery
    from lstmq.settings import get_settings

    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setenv("LSTMQ_BROKER_URL", redis_url)
    get_settings.cache_clear()
    app = make_celery()
    yield app
    app.close()


def queued_payloads(redis_url: str, queue: str = "lstmq.classify") -> list[dict]:
    """The BatchPayload dicts waiting in ``queue``, oldest first."""
    import redis

    raw = redis.Redis.from_url(redis_url).lrange(queue, 0, -1)
    payloads = []
    for envelope in reversed(raw):
        message = json.loads(envelope)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        payloads.append(args[0])
    return payloads


def queued_doc_ids(redis_url: str, queue: str = "lstmq.classify") -> list[int]:
    return [doc["id"] for payload in queued_payloads(redis_url, queue) for doc in payload["docs"]]


def run_lstmq(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m lstmq ARGS`` in a fresh interpreter with this test's LSTMQ_* environment."""
    env = {key: value for key, value in os.environ.items()}
    return subprocess.run(
        [sys.executable, "-m", "lstmq", *args], input=stdin, capture_output=True, env=env, cwd=REPO, timeout=timeout
    )
