"""A batch's row in ``batches`` as its worker moves it: taken, finished, or handed back.

The dispatcher counts these rows to keep each queue only as full as its workers can take; the
leader's reconciler reads who holds each one (``lstmq.worker.heal.reconcile``). A batch that
waits for a retry stays taken by its live worker: it is in flight, never sent beside itself.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine, bindparam, delete, update
from sqlalchemy.orm import Session

from lstmq.contract import BatchPayload
from lstmq.db.engine import session_scope
from lstmq.db.schema import BATCH_QUEUED, BATCH_RUNNING, Batch, utcnow
from lstmq.dispatch.wake import notify

BATCHES = Batch.__table__
# Built once, Core on the table: a batch runs both (an ORM UPDATE built per call cost more CPU).
_TAKE = (
    update(BATCHES)
    .where(BATCHES.c.id == bindparam("batch"), BATCHES.c.job_id == bindparam("job"))
    .values(
        state=BATCH_RUNNING,
        worker=bindparam("worker"),
        worker_pid=bindparam("pid"),
        started_at=bindparam("now", type_=BATCHES.c.started_at.type),
        receipts=BATCHES.c.receipts + 1,
    )
)
_FINISH = delete(BATCHES).where(BATCHES.c.id == bindparam("batch"), BATCHES.c.job_id == bindparam("job"))


def take(engine: Engine, batch: BatchPayload, worker: str, pid: int | None = None) -> None:
    """Mark the batch running on ``worker`` (the beating process ``pid``: a prefork child's parent)."""
    if batch.batch_id is None:
        return
    params = {"batch": batch.batch_id, "job": batch.job_id, "worker": worker[:255], "pid": pid or os.getpid()}
    with engine.begin() as conn:
        conn.execute(_TAKE, {**params, "now": utcnow()})


def finish(session: Session, batch_id: int | None, job_id: str) -> None:
    """The batch's outcome is written in this transaction (or it had nothing left to do): its
    slot is free once it commits."""
    if batch_id is None:
        return
    session.execute(_FINISH, {"batch": batch_id, "job": job_id})
    notify(session)


def hand_back(engine: Engine, batch: BatchPayload) -> None:
    """A worker stopping while the batch waits for a retry: it is queued again but in no queue
    (the message is acknowledged), so the reconciler sends it again without counting a death."""
    if batch.batch_id is None:
        return
    with session_scope(engine) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.batch_id, Batch.job_id == batch.job_id)
            .values(state=BATCH_QUEUED, worker=None, worker_pid=None, sent_at=None)
        )
