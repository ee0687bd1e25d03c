"""The worker's read of a batch's state: one statement for a genuine batch, and the authenticity
check it feeds (content hashes first, the recorded text only where a hash cannot prove it)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import event, update

from lstmq.contract import MAX_MESSAGE_TEXT_CHARS
from lstmq.db.schema import Document
from lstmq.worker.batches import batch_state, docs_to_process, refusal
from tests.support.jobs import add_job, batch_of

TEXTS = ["a genuine document", "another one, recorded as sent", "x" * (MAX_MESSAGE_TEXT_CHARS + 10)]
SENT = [text[:MAX_MESSAGE_TEXT_CHARS] for text in TEXTS]  # what a producer puts in a message


def hashed_job(engine, texts: list[str]) -> tuple[str, list[int]]:
    """A job whose documents carry the sha256 of their text, as a producer records them."""
    job_id, ids = add_job(engine, texts)
    with engine.begin() as conn:
        for doc_id, text in zip(ids, texts, strict=True):
            digest = hashlib.sha256(text.encode()).hexdigest()
            conn.execute(update(Document).where(Document.id == doc_id).values(content_hash=digest))
    return job_id, ids


def check(engine, batch) -> tuple[str | None, list[str]]:
    """refusal's answer and the SQL statements that reading and checking the batch sent."""
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        return refusal(engine, batch, batch_state(engine, batch)), statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_a_genuine_batch_is_read_and_checked_with_one_statement(migrated_db):
    job_id, ids = hashed_job(migrated_db, TEXTS[:2])
    reason, statements = check(migrated_db, batch_of(job_id, "news", ids, SENT[:2]))
    assert reason is None and len(statements) == 1


def test_a_text_cut_for_its_message_is_compared_with_the_recorded_text(migrated_db):
    job_id, ids = hashed_job(migrated_db, TEXTS)
    assert check(migrated_db, batch_of(job_id, "news", ids, SENT))[0] is None
    forged = [*SENT[:2], "y" + SENT[2][1:]]
    assert check(migrated_db, batch_of(job_id, "news", ids, forged))[0] == (
        f"the text of document {ids[2]} is not the recorded one"
    )


def test_a_row_whose_hash_is_not_of_its_text_falls_back_to_the_text(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:2])  # the fixture's hashes are not sha256 of the texts
    assert check(migrated_db, batch_of(job_id, "news", ids, SENT[:2]))[0] is None
    reason, _ = check(migrated_db, batch_of(job_id, "news", ids, [SENT[0], "forged"]))
    assert reason == f"the text of document {ids[1]} is not the recorded one"


@pytest.mark.parametrize(
    ("model", "texts", "expected"),
    [
        ("other", SENT[:2], "model 'other' is not the job's model 'news'"),
        ("news", [SENT[0], "forged \ud800 surrogate"], "the text of document {} is not the recorded one"),
    ],
)
def test_forged_batches_are_refused(migrated_db, model, texts, expected):
    job_id, ids = hashed_job(migrated_db, TEXTS[:2])
    assert check(migrated_db, batch_of(job_id, model, ids, texts))[0] == expected.format(ids[1])


def test_the_batch_function_reuses_the_state_its_task_read(migrated_db):
    job_id, ids = hashed_job(migrated_db, TEXTS[:2])
    batch = batch_of(job_id, "news", ids, SENT[:2])
    rows = batch_state(migrated_db, batch)
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(migrated_db, "before_cursor_execute", listener)
    try:
        assert [doc.id for doc in docs_to_process(migrated_db, batch, rows)] == ids
        assert statements == []
        docs_to_process(migrated_db, batch)  # no state given: read
    finally:
        event.remove(migrated_db, "before_cursor_execute", listener)
    assert len(statements) == 1
