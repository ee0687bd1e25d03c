"""Drift: has what a model sees changed? A job's profile is its label mix, its score histogram
(fixed bins) and its expected accuracy; two profiles compare by the population stability index of
each. A schedule's runs compare with a reference run, its first by default.
Callers own the session."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lstmq.db.queries import get_job
from lstmq.db.schema import Classification, Document, Schedule, ScheduleRun
from lstmq.errors import InputError, ScheduleNotFound
from lstmq.quality import DEFAULT_PSI_THRESHOLD, histogram, psi


def profile(session: Session, job_id: str, model: str | None = None) -> dict:
    """The label mix, score histogram and expected accuracy of the job's results of ``model``
    (its own model by default), all versions together."""
    model = model or get_job(session, job_id).model
    rows = session.execute(
        select(Classification.label, Classification.score)
        .join(Document, Document.id == Classification.document_id)
        .where(Document.job_id == job_id, Classification.model == model)
    ).all()
    scores = [score for _, score in rows]
    return {
        "job_id": job_id,
        "documents": len(rows),
        "labels": dict(sorted(Counter(label for label, _ in rows).items())),
        "histogram": histogram(scores),
        "expected_accuracy": sum(scores) / len(scores) if scores else None,
    }


def compare(reference: dict, current: dict, threshold: float = DEFAULT_PSI_THRESHOLD) -> dict:
    """``current`` with the PSI of its label mix and score histogram against ``reference``, and
    ``drifted``: either PSI above ``threshold``. Empty profiles have no PSI and never drift."""
    if not reference["documents"] or not current["documents"]:
        return current | {"label_psi": None, "score_psi": None, "drifted": False}
    label_psi = psi(reference["labels"], current["labels"])
    score_psi = psi(reference["histogram"], current["histogram"])
    return current | {"label_psi": label_psi, "score_psi": score_psi, "drifted": max(label_psi, score_psi) > threshold}


def schedule_drift(
    session: Session, name: str, reference_run: int | None = None, threshold: float = DEFAULT_PSI_THRESHOLD
) -> dict:
    """Every run of schedule ``name`` that made a job, compared with the reference run (its first
    such run by default), oldest first."""
    schedule = session.scalar(select(Schedule).where(Schedule.name == name))
    if schedule is None:
        raise ScheduleNotFound(f"no schedule named {name!r} (see `lstmq schedule list`)")
    runs = list(
        session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule.id, ScheduleRun.job_id.is_not(None))
            .order_by(ScheduleRun.id)
        )
    )
    if not runs:
        raise InputError(f"schedule {name!r} has no run with documents yet")
    reference = runs[0] if reference_run is None else next((r for r in runs if r.id == reference_run), None)
    if reference is None:
        raise InputError(f"schedule {name!r} has no run {reference_run} with documents")
    base = profile(session, reference.job_id, schedule.model)
    compared = [
        {"run": run.id} | compare(base, profile(session, run.job_id, schedule.model), threshold) for run in runs
    ]
    return {
        "schedule": name,
        "model": schedule.model,
        "reference": reference.id,
        "threshold": threshold,
        "runs": compared,
    }


def latest_drift(session: Session, threshold: float = DEFAULT_PSI_THRESHOLD) -> dict[str, dict]:
    """{schedule name: its latest run with documents compared with its first}, for /metrics. Reads
    the classifications of both jobs of each schedule: two jobs per schedule per scrape."""
    firsts = (
        select(ScheduleRun.schedule_id, func.min(ScheduleRun.id).label("first"), func.max(ScheduleRun.id).label("last"))
        .where(ScheduleRun.job_id.is_not(None))
        .group_by(ScheduleRun.schedule_id)
        .subquery()
    )
    found = {}
    for schedule, first, last in session.execute(
        select(Schedule, firsts.c.first, firsts.c.last).join(firsts, firsts.c.schedule_id == Schedule.id)
    ):
        jobs = [session.get(ScheduleRun, run).job_id for run in (first, last)]
        base, current = (profile(session, job_id, schedule.model) for job_id in jobs)
        found[schedule.name] = compare(base, current, threshold)
    return found


def jobs_drift(session: Session, model: str, job_a: str, job_b: str, threshold: float = DEFAULT_PSI_THRESHOLD) -> dict:
    """Job ``job_b``'s results of ``model`` compared with ``job_a``'s."""
    base = profile(session, job_a, model)
    return {
        "model": model,
        "reference": job_a,
        "threshold": threshold,
        "runs": [compare(base, profile(session, job_b, model), threshold)],
    }
