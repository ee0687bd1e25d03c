"""Rejected lines of API submissions: the first ones in the response, up to
``MAX_STORED_REJECTIONS`` per job in ``job_rejections`` for ``GET /api/v1/jobs/{id}/rejected``
(the CLI prints them instead)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from lstmq.db.engine import session_scope
from lstmq.db.schema import JobRejection
from lstmq.readers.records import Rejected

MAX_STORED_REJECTIONS = 10_000  # per job; past it only jobs.rejected counts them
FIRST_REJECTED = 20  # lines shown in the submission's response


class KeptRejections:
    """An ``on_reject`` callback that keeps the first ``MAX_STORED_REJECTIONS`` (bounded memory)."""

    def __init__(self) -> None:
        self.kept: list[Rejected] = []

    def __call__(self, bad: Rejected) -> None:
        if len(self.kept) < MAX_STORED_REJECTIONS:
            self.kept.append(bad)

    def first(self) -> list[dict]:
        return [as_line(bad.line_no, bad.reason) for bad in self.kept[:FIRST_REJECTED]]

    def store(self, engine: Engine, job_id: str) -> None:
        if self.kept:
            rows = [{"job_id": job_id, "line_no": bad.line_no, "reason": bad.reason} for bad in self.kept]
            with session_scope(engine) as session:
                session.execute(insert(JobRejection), rows)


def as_line(line_no: int, reason: str) -> dict:
    return {"line": line_no, "reason": reason}


def stored_rejections(session: Session, job_id: str) -> list[dict]:
    rows = session.execute(
        select(JobRejection.line_no, JobRejection.reason).where(JobRejection.job_id == job_id).order_by(JobRejection.id)
    )
    return [as_line(line_no, reason) for line_no, reason in rows]
