"""``Idempotency-Key``: a retried submission gets the first one's answer, not a second job.

The first request claims (token, key) with a unique row before recording anything; a retry
finds the row and replays its stored response. A key sent again with a different request
(other parameters or body) is refused, as is a retry while the first is still recording. A
first request that fails releases its claim, so the retry runs afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from lstmq.db.engine import session_scope
from lstmq.db.schema import IdempotencyKey

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
            if found is not None:
                return self._replay(found)
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


def _in_progress() -> HTTPException:
    return HTTPException(409, f"a request with this {HEADER} is still being processed; retry later")
