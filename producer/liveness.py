"""A submit's sign of life while it records a job, so a submit that died is told from a slow one.

While recording, the job's ``progressed_at`` is kept fresh: each recorded chunk sets it (in the
chunk's transaction), and between chunks, as when stdin is slow, a thread sets it every
heartbeat (``Settings.heartbeat_s``). A job still recording whose ``progressed_at`` is older
than ``LSTMQ_STALL_AFTER_S`` has lost its submit (killed, out of memory, machine gone): the
workers' reconciler cancels it (``lstmq.worker.heal.reconcile.cancel_abandoned``). Each beat reads the
job's state, so a submit notices when its job was cancelled (by ``lstmq cancel`` or the
reconciler) and stops recording it, leaving the job cancelled with what it recorded.
"""

from __future__ import annotations

import logging
import threading
from time import monotonic

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from lstmq.db.engine import session_scope
from lstmq.db.schema import JOB_SUBMITTING, Job, utcnow
from lstmq.errors import SubmitCancelled

log = logging.getLogger("lstmq.producer")


def beat(session, job_id: str, **values) -> bool:
    """Mark the job alive (and set ``values``, whatever its state: a cancelled job's counts must
    still be right); False when it is no longer submitting."""
    session.execute(update(Job).where(Job.id == job_id).values(progressed_at=utcnow(), **values))
    return session.scalar(select(Job.state).where(Job.id == job_id)) == JOB_SUBMITTING


class RecordingLease:
    """The thread that beats for a job between chunks; ``check`` raises once it was cancelled."""

    def __init__(self, engine: Engine, job_id: str, interval_s: float):
        self.engine, self.job_id, self.interval_s = engine, job_id, interval_s
        self.cancelled = False
        self._last = monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lstmq-lease", daemon=True)

    def touched(self, alive: bool) -> None:
        """A chunk's own beat just committed (``alive``: it found the job still submitting)."""
        self._last = monotonic()
        self.cancelled = self.cancelled or not alive

    def check(self, recorded: int) -> None:
        if self.cancelled:
            raise SubmitCancelled(
                f"job {self.job_id} was cancelled while it was being submitted, after {recorded:,} documents "
                f"were recorded; nothing more is queued (submit the input again for a new job)"
            )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s / 2):
            if monotonic() - self._last < self.interval_s:
                continue  # a chunk beat recently: no write to compete with the recording
            try:
                with session_scope(self.engine) as session:
                    self.touched(beat(session, self.job_id))
            except SQLAlchemyError as exc:  # the recording itself meets the outage and reports it
                log.debug("recording lease of job %s: %s", self.job_id, exc)

    def __enter__(self) -> RecordingLease:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
