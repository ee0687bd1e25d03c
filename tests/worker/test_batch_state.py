"""The worker's read of a batch's state: one statement for a genuine batch, the recorded texts
(never a message's), and the check it feeds (a batch naming another model is refused)."""

from __future__ import annotations

from sqlalchemy import event

from lstmq.contract import MAX_TEXT_CHARS
from lstmq.worker.batches import batch_state, docs_to_process, refusal
from tests.support.jobs import add_job, batch_of

TEXTS = ["a genuine document", "another one, recorded as sent", "x" * (MAX_TEXT_CHARS + 10)]


def check(engine, batch) -> tuple[str | None, list[str]]:
    """refusal's answer and the SQL statements that reading and checking the batch sent."""
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        return refusal(batch, batch_state(engine, batch)), statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_a_genuine_batch_is_read_and_checked_with_one_statement(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:2])
    reason, statements = check(migrated_db, batch_of(job_id, "news", ids))
    assert reason is None and len(statements) == 1


def test_a_batch_naming_another_model_is_refused(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:2])
    assert check(migrated_db, batch_of(job_id, "other", ids))[0] == "model 'other' is not the job's model 'news'"


def test_the_texts_processed_are_the_recorded_ones_cut_for_the_model(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS)
    docs = docs_to_process(migrated_db, batch_of(job_id, "news", ids))
    assert [doc.text for doc in docs] == [text[:MAX_TEXT_CHARS] for text in TEXTS]


def test_texts_in_an_older_lstmqs_message_are_never_processed(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:2])
    batch = batch_of(job_id, "news", ids, ["World: forged label", "forged \ud800 surrogate"])
    assert batch.ids == ids
    assert [doc.text for doc in docs_to_process(migrated_db, batch)] == TEXTS[:2]


def test_ids_of_another_job_are_skipped(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:1])
    _, others = add_job(migrated_db, TEXTS[1:2])
    assert [doc.id for doc in docs_to_process(migrated_db, batch_of(job_id, "news", [*ids, *others]))] == ids


def test_the_batch_function_reuses_the_state_its_task_read(migrated_db):
    job_id, ids = add_job(migrated_db, TEXTS[:2])
    batch = batch_of(job_id, "news", ids)
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
