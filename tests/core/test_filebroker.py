"""The embedded broker hands consumers whole messages only (``lstmq.filebroker``)."""

from __future__ import annotations

import os
from queue import Empty

import pytest

from lstmq import filebroker
from lstmq.queue import make_celery
from lstmq.settings import Settings

# kombu keeps the bindings it has declared in class-level state, for one folder per process:
# each test gets a queue of its own, so none relies on another's (now deleted) folder.
QUEUE = "lstmq.test"


@pytest.fixture
def app(tmp_path):
    settings = Settings(home=tmp_path, broker_url=None, database_url=f"sqlite:///{tmp_path / 'db'}")
    return make_celery(settings)


@pytest.fixture
def queue(app, request):
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(f"{QUEUE}.{request.node.name.replace('_', '-')}")
        yield simple
        simple.close()


def take(queue) -> dict:
    message = queue.get(timeout=5)
    message.ack()
    return message.payload


def queue_folder(app) -> str:
    return app.conf.broker_transport_options["data_folder_in"]


def test_the_embedded_broker_is_lstmqs_transport(app):
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, filebroker.Transport)


def test_a_message_being_written_is_invisible_to_consumers(app, queue, monkeypatch):
    seen_while_writing = []
    replace = os.replace

    def consumer_looks_then_replace(src, dst):
        try:
            seen_while_writing.append(queue.get(block=False).payload)
        except Empty:
            seen_while_writing.append(None)
        replace(src, dst)

    monkeypatch.setattr(filebroker.os, "replace", consumer_looks_then_replace)
    queue.put({"n": 1})
    assert seen_while_writing == [None]
    assert take(queue) == {"n": 1}


def test_every_message_comes_out_once(queue):
    for n in range(20):
        queue.put({"n": n})
    assert sorted(take(queue)["n"] for _ in range(20)) == list(range(20))
    with pytest.raises(Empty):
        queue.get(block=False)


def test_a_file_that_is_not_a_message_is_dropped_and_the_next_message_delivered(app, queue, caplog):
    with open(os.path.join(queue_folder(app), f"0_bad.{queue.queue.name}.msg"), "wb") as bad:
        bad.write(b"")  # what a consumer of kombu's own transport could take mid-write
    queue.put({"n": 1})
    assert take(queue) == {"n": 1}
    assert "malformed message file dropped" in caplog.text
    assert not [name for name in os.listdir(queue_folder(app)) if name.endswith(".msg")]
