"""Daily housekeeping: what piles up unless someone sweeps it.

- jobs older than ``LSTMQ_RETAIN`` (finished or cancelled ones; unset: kept forever),
- ``workers`` rows of workers dead for over a day (a live one rewrites its row every few seconds),
- idempotency keys older than ``IDEMPOTENCY_KEY_TTL`` (a retry after a day is a new request),
- spools (the API's temporary folders: uploads, Parquet exports) older than a day, left by a
  killed server.

Workers run it from their heartbeat (``lstmq.worker.heal.heartbeat``), at most once a day over all
of them: whoever takes the day's lease runs it. Every step is idempotent, so a second run, or a
crash half-way, is harmless; the API server sweeps its own spools when it starts, since a worker
may run on another host.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete

from lstmq.db.engine import make_engine, session_scope
from lstmq.db.retention import Pruned, prune
from lstmq.db.schema import IdempotencyKey, WorkerBeat, utcnow
from lstmq.dispatch.lease import hold
from lstmq.settings import Settings

log = logging.getLogger("lstmq.housekeeping")

LEASE = "housekeeping"  # the lease whose holder runs today's housekeeping
EVERY = timedelta(days=1)
DEAD_WORKER_AFTER = timedelta(days=1)
IDEMPOTENCY_KEY_TTL = timedelta(days=1)
STALE_SPOOL_AFTER = timedelta(days=1)
SPOOL_PREFIX = "lstmq-spool-"  # the API's temporary folders (uploads, Parquet exports) in the system's


@dataclass
class Swept:
    pruned: Pruned | None  # None: no LSTMQ_RETAIN
    workers: int
    keys: int
    spools: int

    def line(self) -> str:
        jobs = self.pruned.line(dry_run=False) if self.pruned else "jobs kept (LSTMQ_RETAIN unset)"
        return f"housekeeping: {jobs}; {self.workers} dead worker rows, {self.keys} idempotency keys, {self.spools} upload spools removed"


def due(engine: Engine, now: datetime | None = None) -> bool:
    """True for one caller a day: it took the day's lease (a fresh holder each time, so nobody renews)."""
    return hold(engine, LEASE, uuid.uuid4().hex, EVERY.total_seconds(), now)


def run_daily(settings: Settings) -> Swept | None:
    """Housekeeping, if this caller takes today's lease; logs what it removed. Never raises: the
    next day (or the next worker) tries again."""
    engine = make_engine(settings.database)
    try:
        if not due(engine):
            return None
        swept = housekeep(engine, settings)
        log.info(swept.line())
        return swept
    except Exception as exc:  # noqa: BLE001 - a housekeeping failure must not stop the worker's heartbeat
        log.error("housekeeping failed (tried again tomorrow): %s", str(exc).splitlines()[0] if str(exc) else exc)
        return None
    finally:
        engine.dispose()


def housekeep(engine: Engine, settings: Settings, now: datetime | None = None) -> Swept:
    now = now or utcnow()
    retain = settings.retention
    pruned = prune(engine, settings.images, retain, now=now) if retain else None
    with session_scope(engine) as session:
        workers = session.execute(delete(WorkerBeat).where(WorkerBeat.beat_at < now - DEAD_WORKER_AFTER)).rowcount
        keys = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_KEY_TTL))
    spools = sweep_spools(Path(tempfile.gettempdir()), now.timestamp())
    return Swept(pruned, workers, keys.rowcount, spools)


def sweep_spools(folder: Path, now_s: float | None = None) -> int:
    """Remove upload spools under ``folder`` not modified for ``STALE_SPOOL_AFTER``; how many."""
    oldest = (now_s if now_s is not None else time.time()) - STALE_SPOOL_AFTER.total_seconds()
    removed = 0
    for spool in folder.glob(SPOOL_PREFIX + "*"):
        try:
            if spool.is_dir() and not spool.is_symlink() and _last_written(spool) < oldest:
                shutil.rmtree(spool)
                removed += 1
        except FileNotFoundError:
            continue  # removed by its own request, or by another sweep
    return removed


def _last_written(spool: Path) -> float:
    """The newest mtime of the folder and its files (a body still being written is fresh)."""
    return max([spool.stat().st_mtime, *(entry.stat().st_mtime for entry in spool.iterdir())])
