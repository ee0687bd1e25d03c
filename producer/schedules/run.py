"""One run of a schedule: claim it, read what is new, record it, queue it, release it.

Exactly once, across schedulers and restarts, rests on the database, not on the beat lock:

1. *Claim*: a conditional UPDATE takes the schedule's lease (token + expiry) only if no live
   lease exists, so two runs of one schedule never overlap (a second is recorded as skipped).
2. *Read* the files past their cursors, outside any transaction: only the lease holder
   moves cursors. *Record* in one transaction, fenced by the token (its first statement
   re-checks and row-locks the lease), the job, its documents, the ledger and the advanced
   cursors together. A crash before commit changes nothing; after it, nothing is read twice.
3. *Queue*: batches of the schedule's jobs still ``submitting`` are sent, then marked
   ``queued``. A run that died between 2 and 3 is completed by the next run, which holds the
   lease; a worker rewrites results idempotently if a batch went out twice.
4. *Release* the lease (``lstmq.producer.schedules.lease``); a crashed run's lease runs out.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from celery import Celery
from sqlalchemy import Engine, update

from lstmq.db.engine import session_scope
from lstmq.db.schema import Schedule, ScheduleRun, utcnow
from lstmq.errors import LstmqError, TransientError
from lstmq.producer.schedules import lease
from lstmq.producer.schedules.enqueue import publish_pending
from lstmq.producer.schedules.scan import ScanResult, scan_and_record
from lstmq.producer.schedules.store import get_schedule

log = logging.getLogger("lstmq.schedule")

PROBLEMS_KEPT = 200  # per run; the count says how many more there were

RUNNING, OK, FAILED, SKIPPED = "running", "ok", "failed", "skipped"


@dataclass
class RunReport:
    schedule: str
    state: str
    run_id: int | None = None
    job_id: str | None = None
    scan: ScanResult = field(default_factory=ScanResult)
    error: str | None = None


def run_schedule(
    engine: Engine, app: Celery, schedule_id: int, trigger: str = "manual", reprocess: bool = False
) -> RunReport:
    """Run a schedule once now. Raises only for a missing schedule or a service failure."""
    token = uuid.uuid4().hex
    sched, run_id = claim(engine, schedule_id, token, trigger)
    if run_id is None:
        return RunReport(sched.name, SKIPPED)
    report = RunReport(sched.name, RUNNING, run_id)
    try:
        report.scan = scan_and_record(engine, sched, run_id, token, reprocess)
        report.job_id = report.scan.job_id
        publish_pending(engine, sched.id)
        report.state = OK
    except LstmqError as exc:
        report.state, report.error = FAILED, str(exc)
        if isinstance(exc, TransientError):
            raise
    finally:
        _finish(engine, sched.id, run_id, token, report)
    return report


def claim(engine: Engine, schedule_id: int, token: str, trigger: str) -> tuple[Schedule, int | None]:
    """(schedule, run id), or (schedule, None) when paused (beat) or another run holds the lease."""
    now = utcnow()
    with session_scope(engine) as session:
        # The write comes first: SQLite then waits for the write lock instead of failing a
        # read transaction that another run's commit made stale.
        taken = lease.take(session, schedule_id, token, now, beat=trigger == "beat")
        sched = get_schedule(session, schedule_id)
        if not taken and trigger == "beat" and sched.paused:
            return sched, None
        run = ScheduleRun(
            schedule_id=schedule_id,
            trigger=trigger,
            state=RUNNING if taken else SKIPPED,
            problems=[] if taken else ["another run of this schedule was in progress"],
            started_at=now,
            finished_at=None if taken else now,
        )
        session.add(run)
        session.flush()
        return sched, run.id if taken else None


def _finish(engine: Engine, schedule_id: int, run_id: int, token: str, report: RunReport) -> None:
    problems = report.scan.problems + ([report.error] if report.error else [])
    if len(problems) > PROBLEMS_KEPT:
        problems = problems[:PROBLEMS_KEPT] + [f"... and {len(problems) - PROBLEMS_KEPT} more"]
    try:
        with session_scope(engine) as session:
            session.execute(
                update(ScheduleRun)
                .where(ScheduleRun.id == run_id)
                .values(
                    state=report.state if report.state != RUNNING else FAILED,
                    finished_at=utcnow(),
                    problems=problems,
                    **report.scan.counts(),
                )
            )
            lease.release(session, schedule_id, token)
    except Exception:  # noqa: BLE001 - the lease runs out by itself; don't hide the first error
        log.exception("schedule run %s: could not record its end", run_id)
