"""Schedule runs as the database records them."""

from __future__ import annotations

from sqlalchemy import Engine, select

from lstmq.db.engine import session_scope
from lstmq.db.schema import ScheduleRun


def beat_runs(engine: Engine) -> list[ScheduleRun]:
    """Every run the scheduler (not a person) started, oldest first."""
    with session_scope(engine) as session:
        return list(session.scalars(select(ScheduleRun).where(ScheduleRun.trigger == "beat").order_by(ScheduleRun.id)))
