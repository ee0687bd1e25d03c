"""``Idempotency-Key``: a retried submission gets the first one's answer, not a second job.

The first request claims (token, key) with a unique row before recording anything; a retry
finds the row and replays its stored response. A key sent again with a different request
(other parameters or body) is refused, as is a retry while the first is still recording. A
first request that fails releases its claim, so the retry runs afresh. A first request that
died with its process (the server killed mid-submission) cannot release it: its claim names
the job it was recording, and once that job is cancelled (the reconciler cancels a job whose
submit stopped, ``lstmq.producer.liveness``) or gone, a retry takes the key over; a claim that never
got its job (it is attached within milliseconds) is taken over after ``LSTMQ_STALL_AFTER_S``.
A key lives ``IDEMPOTENCY_KEY_TTL`` (a day): after that it is a new key, and housekeeping
(``lstmq.housekeeping``) deletes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_CANCELLED, IdempotencyKey, Job, as_utc, utcnow
from lstmq.housekeeping import IDEMPOTENCY_KEY_TTL
from lstmq.settings import get_settings

log = logging.getLogger("lstmq.api")

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255


@dataclass(frozen=True)
class Claim:
    engine: Engine
    token_id: str
    key: str
    request_hash: str

    def replay_or_take(self) -> dict | None:
        """The first request's response, or None once this request holds the key."""
        with session_scope(self.engine) as session:
            found = session.get(IdempotencyKey, (self.token_id, self.key))
            if found is not None and utcnow() - as_utc(found.created_at) > IDEMPOTENCY_KEY_TTL:
                session.delete(found)  # expired: this request is a new one
                found = None
            if found is not None:
                if not _abandoned(session, found):
                    return self._replay(found)
                if found.request_hash != self.request_hash:
                    raise HTTPException(422, f"{HEADER} {self.key!r} was used for a different request")
                log.warning(
                    "%s %r: its first request died with job %s; this one takes it over", HEADER, self.key, found.job_id
                )
                session.delete(found)
        try:
            with session_scope(self.engine) as session:
                session.add(IdempotencyKey(token_id=self.token_id, key=self.key, request_hash=self.request_hash))
        except IntegrityError:
            raise _in_progress() from None
        return None

    def _replay(self, found: IdempotencyKey) -> dict:
        if found.request_hash != self.request_hash:
            raise HTTPException(422, f"{HEADER} {self.key!r} was used for a different request")
        if found.response is None:
            raise _in_progress()
        return found.response

    def attach(self, job_id: str) -> None:
        """The job this request is recording, as soon as it exists."""
        with session_scope(self.engine) as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.token_id == self.token_id, IdempotencyKey.key == self.key)
                .values(job_id=job_id)
            )

    def settle(self, job_id: str, response: dict) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.token_id == self.token_id, IdempotencyKey.key == self.key)
                .values(job_id=job_id, response=response)
            )

    def release(self) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.token_id == self.token_id, IdempotencyKey.key == self.key)
            )


def _abandoned(session: Session, claim: IdempotencyKey) -> bool:
    """Whether an unsettled claim's request is dead (see the module's docstring)."""
    if claim.response is not None:
        return False
    if claim.job_id is None:
        return (utcnow() - as_utc(claim.created_at)).total_seconds() > get_settings().stall_after_s
    job = session.get(Job, claim.job_id)
    return job is None or job.state == JOB_CANCELLED


def _in_progress() -> HTTPException:
    return HTTPException(409, f"a request with this {HEADER} is still being processed; retry later")
