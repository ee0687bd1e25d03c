"""Recording: COPY on PostgreSQL and executemany on SQLite keep the same documents and reject the
same records for the same input (the rules themselves: tests/producer/test_submit.py)."""

from __future__ import annotations

import random

import pytest
import redis
from sqlalchemy import select

from lstmq.batching import chunked
from lstmq.db.engine import make_engine, session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.schema import Document
from lstmq.producer import recording
from lstmq.producer import submit as submit_module
from lstmq.producer.submit import submit_records
from lstmq.queue import make_celery
from lstmq.readers.records import Record, Rejected
from lstmq.settings import get_settings
from tests.support.models import install_fake_model
from tests.support.postgres import empty_postgres

COLUMNS = ("external_id", "text", "source", "line_no", "record_no", "content_hash", "status")


@pytest.fixture
def engines(lstmq_env, pg_url, redis_url, tmp_path):
    """An upgraded SQLite and PostgreSQL database side by side, a model and a broker."""
    lstmq_env(broker_url=redis_url)
    install_fake_model(get_settings().user_model_dir, "tiny-clf", "classifier")
    redis.Redis.from_url(redis_url).flushdb()
    made = {
        "sqlite": make_engine(f"sqlite:///{tmp_path / 'lstmq.db'}"),
        "postgresql": make_engine(empty_postgres(pg_url)),
    }
    for engine in made.values():
        upgrade(engine)
    app = make_celery()
    yield made, app
    app.close()
    for engine in made.values():
        engine.dispose()


def mixed_input(seed: int, numbered_first: int) -> list[Record | Rejected]:
    """``numbered_first`` records without ids, then ids drawn from a small pool (repeats within
    and across chunks, some equal to earlier record numbers), record numbers and bad records."""
    rng = random.Random(seed)
    items: list[Record | Rejected] = []
    for n in range(numbered_first + 120):
        if n >= numbered_first and rng.random() < 0.1:
            items.append(Rejected("in.jsonl", n + 1, "bad"))
            continue
        own = n >= numbered_first and rng.random() < 0.6
        external_id = str(rng.randrange(40)) if own else None
        items.append(Record(f"text {n} {rng.random()}", external_id, "in.jsonl", n + 1, n))
    return items


def expected(items: list[Record | Rejected]) -> tuple[list[tuple], list[str]]:
    """The rule: the first record with an id is kept; a later one is rejected as a duplicate."""
    kept, rejected, seen = [], [], set()
    for number, item in enumerate(items):
        if isinstance(item, Rejected):
            rejected.append(str(item))
            continue
        external_id = item.external_id if item.external_id is not None else str(number)
        if external_id in seen:
            rejected.append(f"{item.source}:{item.line_no}: duplicate id {external_id!r}")
        else:
            seen.add(external_id)
            kept.append((external_id, item.text))
    return kept, rejected


def recorded(engine, items) -> tuple[list[tuple], list[str], tuple[int, int]]:
    rejected: list[str] = []
    report = submit_records(
        engine, make_celery(), items, task="classify", model="tiny-clf", on_reject=lambda r: rejected.append(str(r))
    )
    with session_scope(engine) as session:
        docs = session.execute(
            select(*(getattr(Document, c) for c in COLUMNS))
            .where(Document.job_id == report.job_id)
            .order_by(Document.id)
        ).all()
    return [tuple(doc) for doc in docs], rejected, (report.total, report.rejected)


@pytest.mark.parametrize("numbered_first", [0, 30], ids=["own-ids-from-the-start", "record-numbers-first"])
@pytest.mark.parametrize("chunk_docs", [7, 500])
def test_copy_and_executemany_record_the_same_documents_and_reject_the_same_records(
    engines, monkeypatch, chunk_docs, numbered_first
):
    monkeypatch.setattr(submit_module, "INSERT_CHUNK_DOCS", chunk_docs)  # duplicates within and across chunks
    monkeypatch.setattr(submit_module, "INSERT_CHUNK_MAX_DOCS", chunk_docs)
    monkeypatch.setattr(recording, "LOOKUP_IDS", 3)  # SQLite looks a chunk's ids up in several statements
    made, _app = engines
    items = mixed_input(seed=chunk_docs + numbered_first, numbered_first=numbered_first)
    sqlite, postgres = (recorded(engine, items) for engine in made.values())
    assert sqlite == postgres
    docs, rejected, counts = postgres
    kept, rejects = expected(items)
    # bad records are reported as they are read, duplicates once their chunk is recorded
    assert ([(d[0], d[1]) for d in docs], sorted(rejected)) == (kept, sorted(rejects))
    assert counts == (len(docs), len(rejected)) and {d[-1] for d in docs} == {"pending"}
    assert [d[4] for d in docs] == [int(d[3]) - 1 for d in docs]  # record numbers kept with their lines


def test_chunks_may_grow_to_a_limit_so_the_first_comes_soon_and_later_ones_cost_less():
    sizes = [len(chunk) for chunk in chunked(range(100), 5, 10**9, lambda _: 1, grow_to=24)]
    assert sizes == [5, 10, 20, 24, 24, 17]
    by_bytes = [len(chunk) for chunk in chunked(range(100), 5, 12, lambda _: 1, grow_to=24)]
    assert by_bytes == [5, 10, *[12] * 7, 1]  # the byte limit still closes every chunk
