"""Retention: delete old jobs with everything they own, in small transactions, while workers run.

A job's age counts from when it last changed: ``finished_at`` when set, else its last progress,
submission or creation. So a job created long ago that finished yesterday is young, and an open
job still being worked on is never old. Which jobs may go (``STATES``): ``ended`` (the default:
finished or cancelled), ``finished``, ``cancelled``, or ``any`` (open ones too, when asked
explicitly). A job with a batch in flight is never pruned.

Each job goes in steps: one UPDATE marks it cancelled, re-checking every condition, so the
dispatcher sends it nothing more and a ``requeue`` cannot reopen it; then its documents and their
results go ``DOCS_PER_TRANSACTION`` at a time (no long lock); then the job row with its rejected
lines, idempotency keys and batches. A render job's image files are deleted after the transaction
that removed their rows commits, each path checked to stay inside the image dir; a file that
another job's image row still names (a reused result shares its source's file) is kept. A prune stopped
half-way leaves a cancelled job that the next prune of ended (or cancelled) jobs finishes.

A schedule's ledger (``corpus_docs``) and run history belong to the schedule and are kept, so a
schedule does not process its corpus again when its old jobs go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, exists, func, select, true

from lstmq.db.dialects import among
from lstmq.db.engine import session_scope
from lstmq.db.queries import CANCELLED_NOTE, IS_FINISHED
from lstmq.db.schema import (
    JOB_CANCELLED,
    Batch,
    Classification,
    Document,
    IdempotencyKey,
    Image,
    Job,
    JobRejection,
    utcnow,
)
from lstmq.errors import InputError

log = logging.getLogger("lstmq.retention")

DOCS_PER_TRANSACTION = 2000  # documents (and their results) deleted per transaction
JOBS_PER_PAGE = 200  # candidate jobs read per query
PRUNED_NOTE = "pruned: its documents are being deleted (lstmq prune)"
STATES = ("ended", "finished", "cancelled", "any")
LAST_CHANGE = func.coalesce(Job.finished_at, Job.progressed_at, Job.submitted_at, Job.created_at)


@dataclass
class Pruned:
    """What a prune removed (or, dry, would remove). ``bytes`` counts image files only."""

    jobs: int = 0
    documents: int = 0
    images: int = 0
    bytes: int = 0

    def line(self, dry_run: bool) -> str:
        verb = "would prune" if dry_run else "pruned"
        counts = f"{_n(self.documents, 'document')}, {_n(self.images, 'image')}, {_n(self.bytes, 'byte')}"
        return f"{verb} {_n(self.jobs, 'job')}: {counts} of image files"


def _n(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def prunable(state: str, older_than: timedelta, now: datetime):
    """SQL: the jobs ``prune`` may delete."""
    chosen = {
        "ended": IS_FINISHED | (Job.state == JOB_CANCELLED),
        "finished": IS_FINISHED,
        "cancelled": Job.state == JOB_CANCELLED,
        "any": true(),
    }
    if state not in chosen:
        raise InputError(f"unknown state {state!r} (expected {', '.join(STATES)})")
    in_flight = exists().where(Batch.job_id == Job.id)
    return chosen[state] & ~in_flight & (LAST_CHANGE < now - older_than)


def prune(
    engine: Engine,
    image_dir: Path,
    older_than: timedelta,
    state: str = "ended",
    dry_run: bool = False,
    now: datetime | None = None,
) -> Pruned:
    """Delete (or with ``dry_run`` count) the jobs older than ``older_than`` in ``state``."""
    where = prunable(state, older_than, now or utcnow())
    total = Pruned()
    for job_id, task in _candidates(engine, where):
        if dry_run:
            _count_job(engine, image_dir, job_id, task, total)
        elif _claim(engine, job_id, where):
            _delete_job(engine, image_dir, job_id, task, total)
    return total


def _candidates(engine: Engine, where) -> Iterator[tuple[str, str]]:
    """(id, task) of every matching job, a page at a time (keyset on id)."""
    after = ""
    while True:
        with session_scope(engine) as session:
            page = session.execute(
                select(Job.id, Job.task).where(where, Job.id > after).order_by(Job.id).limit(JOBS_PER_PAGE)
            ).all()
        if not page:
            return
        yield from page
        after = page[-1].id


def _claim(engine: Engine, job_id: str, where) -> bool:
    """Mark the job cancelled if it still matches: from here on nothing sends or reopens it."""
    with session_scope(engine) as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or session.scalar(select(Job.id).where(Job.id == job_id, where)) is None:
            return False
        job.state = JOB_CANCELLED
        job.options = {**(job.options or {}), CANCELLED_NOTE: PRUNED_NOTE}
        return True


def _documents(engine: Engine, job_id: str, task: str, remove: bool) -> Iterator[tuple[int, list[str], set[str]]]:
    """The job's documents, ``DOCS_PER_TRANSACTION`` at a time: (how many, their image paths,
    those of the paths other documents' images still name), each chunk yielded after the
    transaction that deleted it (``remove``) has committed."""
    after = 0
    while True:
        with session_scope(engine) as session:
            ids = session.scalars(
                select(Document.id)
                .where(Document.job_id == job_id, Document.id > after)
                .order_by(Document.id)
                .limit(DOCS_PER_TRANSACTION)
            ).all()
            if not ids:
                return
            # A subquery, not a list of ids: no statement carries thousands of parameters.
            chunk = select(Document.id).where(Document.job_id == job_id, Document.id.between(ids[0], ids[-1]))
            paths = (
                list(session.scalars(select(Image.path).where(Image.document_id.in_(chunk))))
                if task == "render"
                else []
            )
            if remove:
                session.execute(delete(Image).where(Image.document_id.in_(chunk)))
                session.execute(delete(Classification).where(Classification.document_id.in_(chunk)))
                session.execute(delete(Document).where(Document.id.in_(chunk)))
            # After the DELETE: on PostgreSQL it waited for any reuse copying these rows
            # (lstmq.dispatch.reuse locks them), so this sees the copies it committed.
            shared = _named_elsewhere(session, paths, chunk) if paths else set()
        yield len(ids), paths, shared
        after = ids[-1]


def _named_elsewhere(session, paths: list[str], chunk) -> set[str]:
    """Those of ``paths`` that an image row of another document names (a reused result shares
    its source's file): their files stay."""
    stmt = select(Image.path).where(among(session.get_bind(), Image.path, paths), Image.document_id.not_in(chunk))
    return set(session.scalars(stmt.distinct()))


def _delete_job(engine: Engine, image_dir: Path, job_id: str, task: str, total: Pruned) -> None:
    for docs, paths, shared in _documents(engine, job_id, task, remove=True):
        total.documents += docs
        total.images += len(paths)
        total.bytes += sum(_remove(image_dir, path) for path in paths if path not in shared)  # rows gone
    with session_scope(engine) as session:
        for table in (JobRejection, IdempotencyKey, Batch):
            session.execute(delete(table).where(table.job_id == job_id))
        session.execute(delete(Job).where(Job.id == job_id))
    total.jobs += 1


def _count_job(engine: Engine, image_dir: Path, job_id: str, task: str, total: Pruned) -> None:
    for docs, paths, shared in _documents(engine, job_id, task, remove=False):
        total.documents += docs
        total.images += len(paths)
        total.bytes += sum(_size(image_file(image_dir, path)) for path in paths if path not in shared)
    total.jobs += 1


def image_file(image_dir: Path, relative: str) -> Path | None:
    """The file an ``images.path`` names, or None when it would lie outside the image dir."""
    root = image_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        log.warning("image path %r leads outside the image dir: left alone", relative)
        return None
    return path


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0


def _remove(image_dir: Path, relative: str) -> int:
    """Delete one image file; its size, or 0 when it was not there."""
    path = image_file(image_dir, relative)
    size = _size(path)
    if path is not None:
        path.unlink(missing_ok=True)
    return size
