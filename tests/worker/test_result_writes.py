"""Result rows written set-based (``upsert_rows``: one statement on PostgreSQL, executemany on
SQLite) keep upsert's rules: one row per key, a rewrite replaces the values, stamps set."""

from __future__ import annotations

from sqlalchemy import event, select

from lstmq.db.dialects import upsert_rows
from lstmq.db.engine import session_scope
from lstmq.db.schema import Classification
from lstmq.worker.batches import RESULT_KEY, Outcome, write_outcome
from lstmq.worker.classify import CLASSIFICATIONS
from tests.support.jobs import add_job, status_counts


def rows_for(ids: list[int], label: str, score: float) -> list[dict]:
    probs = {"short": 1 - score, "long": score}
    return [
        {
            "document_id": i,
            "model": "m",
            "model_version": "v1",
            "label": label,
            "score": score,
            "probs": probs,
            "flags": [],
        }
        for i in reversed(ids)  # any order in, key order written
    ]


def write(engine, rows: list[dict]) -> None:
    with session_scope(engine) as session:
        upsert_rows(session, Classification, rows, RESULT_KEY, CLASSIFICATIONS.columns)


def stored(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(Classification)).all()
    return {
        row.document_id: (row.label, row.score, row.probs, row.flags, row.created_at, row.updated_at) for row in rows
    }


def test_rows_are_inserted_then_rewritten_one_per_key(migrated_db):
    _, ids = add_job(migrated_db, ["one", "two", "three"])
    write(migrated_db, rows_for(ids[:2], "short", 0.1234567890123))
    first = stored(migrated_db)
    assert sorted(first) == ids[:2]
    assert first[ids[0]][:4] == ("short", 0.1234567890123, {"short": 1 - 0.1234567890123, "long": 0.1234567890123}, [])

    write(migrated_db, rows_for(ids, "long", 0.9))
    second = stored(migrated_db)
    assert sorted(second) == ids and {value[0] for value in second.values()} == {"long"}
    assert second[ids[0]][4] == first[ids[0]][4] and second[ids[0]][5] >= first[ids[0]][5]  # created kept


def test_flags_and_text_values_survive_the_json_round_trip(migrated_db):
    _, ids = add_job(migrated_db, ["one"])
    rows = rows_for(ids, 'quote " and ünïcode \\ label', 0.5)
    rows[0]["flags"] = ["truncated", "no_known_tokens"]
    write(migrated_db, rows)
    label, _score, _probs, flags, *_ = stored(migrated_db)[ids[0]]
    assert (label, flags) == ('quote " and ünïcode \\ label', ["truncated", "no_known_tokens"])


def test_a_batch_of_new_results_is_written_without_reading_anything(migrated_db):
    """Rows, statuses and the job's counters: writes only (the worker knows its batch's job). A batch
    that is not its job's last: the one that finishes a job also reads what its events need."""
    job_id, ids = add_job(migrated_db, ["one", "two", "three", "four"])
    ids = ids[:3]
    outcome = Outcome(rows=rows_for(ids, "long", 0.9))
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(migrated_db, "before_cursor_execute", listener)
    try:
        write_outcome(migrated_db, outcome, CLASSIFICATIONS, job_id)
    finally:
        event.remove(migrated_db, "before_cursor_execute", listener)
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert status_counts(migrated_db, job_id) == {"done": 3, "pending": 1}
