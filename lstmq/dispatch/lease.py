"""A named lease in the database: one holder at a time, taken over once it runs out.

The dispatcher's leader holds ``DISPATCHER`` and renews it well before it runs out; a holder
that dies (SIGKILL, OOM) stops renewing, and another worker takes the lease over when it
expires. Taking and renewing are one compare-and-set UPDATE each, so two workers never both
hold it; a holder paused past its lease (a stopped VM) loses it, and dispatching stays correct
even then, since every batch moves its job's cursor by compare-and-set.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError

from lstmq.db.engine import session_scope
from lstmq.db.schema import Lease, utcnow

DISPATCHER = "dispatcher"


def hold(engine: Engine, name: str, holder: str, ttl_s: float, now: datetime | None = None) -> bool:
    """Take or renew the lease for ``ttl_s`` seconds; True when ``holder`` holds it now."""
    now = now or utcnow()
    until = now + timedelta(seconds=ttl_s)
    with session_scope(engine) as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.until < now))
            .values(holder=holder, until=until)
        )
        if taken.rowcount == 1:
            return True
        if session.get(Lease, name) is not None:
            return False
    try:  # the first holder ever: the row does not exist yet
        with session_scope(engine) as session:
            session.add(Lease(name=name, holder=holder, until=until))
        return True
    except IntegrityError:
        return False  # another worker created it first


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up at once (a warm shutdown), if ``holder`` holds it."""
    with session_scope(engine) as session:
        session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder).values(until=utcnow()))
