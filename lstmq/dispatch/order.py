"""Who is served next: pure functions and one small state object, no I/O.

Priority is strict: a batch of a lower priority is sent only when no job of a higher priority
waits for the same queue. Within a priority, owners share by weight with stride scheduling
(Waldspurger & Weihl 1995): each owner has a *pass*, the batches it was sent divided by its
weight, and the owner with the lowest pass goes next. An owner's jobs take turns the same way
with weight 1, so a small job is served at its owner's next turn, not after a big one.
A newcomer (or one back after a pause) starts level with those already waiting, so being idle
earns no burst later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lstmq.db.schema import DEFAULT_WEIGHT, PRIORITIES


@dataclass
class Waiting:
    """A job with documents still to send, as the dispatcher sees it."""

    id: str
    queue: str
    priority: str
    owner: str
    created_at: datetime
    in_flight: int = 0  # its batches sent and not yet finished


def rank(priority: str) -> int:
    """0 for the highest priority; an unknown one (a newer lstmq's) counts as the lowest."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


class FairShare:
    """The passes of owners and jobs across dispatch rounds."""

    def __init__(self) -> None:
        self.owner_pass: dict[str, float] = {}
        self.job_pass: dict[str, float] = {}
        self._seen_owners: set[str] = set()
        self._seen_jobs: set[str] = set()

    def pick(self, jobs: Iterable[Waiting]) -> Waiting | None:
        """The job whose batch goes next, or None when ``jobs`` is empty."""
        jobs = list(jobs)
        if not jobs:
            return None
        top = min(rank(job.priority) for job in jobs)
        level = [job for job in jobs if rank(job.priority) == top]
        owner = _lowest(self.owner_pass, self._seen_owners, {job.owner for job in level})
        mine = [job for job in level if job.owner == owner]
        chosen = _lowest(self.job_pass, self._seen_jobs, {job.id for job in mine}, mine)
        return next(job for job in mine if job.id == chosen)

    def served(self, job: Waiting, weight: int = DEFAULT_WEIGHT) -> None:
        """One batch of ``job`` was sent: its owner's pass moves by 1/weight, the job's by 1."""
        self.owner_pass[job.owner] += 1 / max(weight, 1)
        self.job_pass[job.id] += 1
        job.in_flight += 1

    def keep_only(self, jobs: Iterable[Waiting]) -> None:
        """Forget owners and jobs that no longer wait (bounded state; a returning one is a newcomer)."""
        jobs = list(jobs)
        owners, ids = {job.owner for job in jobs}, {job.id for job in jobs}
        self.owner_pass = {key: value for key, value in self.owner_pass.items() if key in owners}
        self.job_pass = {key: value for key, value in self.job_pass.items() if key in ids}
        self._seen_owners &= owners
        self._seen_jobs &= ids


def _lowest(passes: dict[str, float], seen: set[str], keys: set[str], jobs: list[Waiting] | None = None) -> str:
    """The key with the lowest pass after newcomers are set level with the others; ties go to the
    job with fewer batches in flight, then the newer one (a job just submitted goes at its
    owner's next turn), or by name (owners)."""
    floor = min((passes[key] for key in keys if key in seen and key in passes), default=0.0)
    for key in keys - seen:
        passes[key] = max(passes.get(key, floor), floor)
        seen.add(key)
    if jobs is None:
        return min(keys, key=lambda key: (passes[key], key))
    by_id = {job.id: job for job in jobs}
    newest_first = sorted(keys, key=lambda key: (by_id[key].created_at, key), reverse=True)
    return min(newest_first, key=lambda key: (passes[key], by_id[key].in_flight))


def weight_of(weights: Mapping[str, int], owner: str) -> int:
    return weights.get(owner, DEFAULT_WEIGHT)
