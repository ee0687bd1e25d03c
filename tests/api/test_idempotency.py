"""Idempotency-Key claims when the first request died with its process (the server killed
mid-submission): a retry must not be refused as 'still being processed' forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.exceptions import HTTPException

from lstmq.api.idempotency import Claim
from lstmq.api.tokens import create_token
from lstmq.db.engine import session_scope
from lstmq.db.schema import ApiToken, IdempotencyKey, utcnow
from lstmq.db.transitions import cancel_job
from tests.support.jobs import add_job


@pytest.fixture
def claim(migrated_db):
    """A factory of claims of one token's key "k" (the same request unless ``request_hash``)."""
    with session_scope(migrated_db) as session:
        create_token(session, "client", "submit")
    with session_scope(migrated_db) as session:
        token_id = session.scalars(select(ApiToken.id)).one()
    return lambda request_hash="h1": Claim(migrated_db, token_id, "k", request_hash)


def test_a_retry_while_the_first_request_records_its_job_is_refused(migrated_db, claim):
    assert claim().replay_or_take() is None
    job_id, _ = add_job(migrated_db, ["text"], state="submitting")
    claim().attach(job_id)
    with pytest.raises(HTTPException) as refused:
        claim().replay_or_take()
    assert refused.value.status_code == 409


def test_a_retry_takes_the_key_over_once_the_first_requests_job_was_cancelled(migrated_db, claim):
    assert claim().replay_or_take() is None
    job_id, _ = add_job(migrated_db, ["text"], state="submitting")
    claim().attach(job_id)
    with session_scope(migrated_db) as session:  # as the reconciler does when the submit died
        cancel_job(session, job_id)
    assert claim().replay_or_take() is None  # this request now holds the key
    with session_scope(migrated_db) as session:
        held = session.scalars(select(IdempotencyKey)).one()
    assert (held.job_id, held.response) == (None, None)


def test_a_claim_that_never_got_its_job_is_taken_over_after_the_stall_time(migrated_db, claim):
    assert claim().replay_or_take() is None
    with pytest.raises(HTTPException):
        claim().replay_or_take()  # young: its request may be about to create the job
    with session_scope(migrated_db) as session:
        session.scalars(select(IdempotencyKey)).one().created_at = utcnow() - timedelta(hours=1)
    assert claim().replay_or_take() is None


def test_a_dead_requests_key_still_refuses_a_different_request(migrated_db, claim):
    assert claim().replay_or_take() is None
    job_id, _ = add_job(migrated_db, ["text"], state="submitting")
    claim().attach(job_id)
    with session_scope(migrated_db) as session:
        cancel_job(session, job_id)
    with pytest.raises(HTTPException) as refused:
        claim("other body").replay_or_take()
    assert refused.value.status_code == 422


def test_a_key_older_than_a_day_is_a_new_key_even_for_another_request(migrated_db, claim):
    assert claim().replay_or_take() is None
    job_id, _ = add_job(migrated_db, ["text"])
    claim().settle(job_id, {"id": job_id})
    with session_scope(migrated_db) as session:
        session.scalars(select(IdempotencyKey)).one().created_at = utcnow() - timedelta(days=1, minutes=1)
    assert claim(request_hash="other").replay_or_take() is None
