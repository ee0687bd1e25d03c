"""Schedule runs as the database records them, and firings as the scheduler's beat logs them."""

from __future__ import annotations

from sqlalchemy import Engine, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import ScheduleRun
from lstmq.producer.schedules.beat import ENTRY_PREFIX
from tests.support.processes import LstmqProcess


def beat_runs(engine: Engine, schedule_id: int | None = None) -> list[ScheduleRun]:
    """Every run the scheduler (not a person) started, oldest first; of one schedule if given."""
    query = select(ScheduleRun).where(ScheduleRun.trigger == "beat").order_by(ScheduleRun.id)
    if schedule_id is not None:
        query = query.where(ScheduleRun.schedule_id == schedule_id)
    with session_scope(engine) as session:
        return list(session.scalars(query))


def fired(scheduler: LstmqProcess, name: str) -> int:
    """How many times this scheduler's beat sent schedule ``name``: Celery beat logs each sending
    when it happens, so this counts firings, not runs that happened to finish."""
    return scheduler.log().count(f"Sending due task {ENTRY_PREFIX}{name} ")
