"""Reviews of a job's labels: reproducible samples, recorded answers, and the job's quality.

A job's sample is an order of its classified documents, fixed by a seed stored with the job: its
random id, unless ``jobs.options["review_seed"]`` names another. Random orders them by ``sample_key(seed, id)``, least-confident
by score ascending, then that key. A sample of n is the first n of the order, so asking for more
extends the same sample. Callers own the session (one transaction per command or request).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lstmq.db.queries import get_job
from lstmq.db.schema import Classification, Document, ModelVersion, Review, utcnow
from lstmq.errors import InputError
from lstmq.quality import sample_key, wilson

MODES = ("random", "least-confident")
SEED_KEY = "review_seed"
CHUNK_IDS = 1000  # ids per IN (...) list: well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Sampled:
    """A document of a sample as a reviewer sees it: the model's label and score, and the review."""

    id: str  # the document's external id
    text: str
    label: str
    score: float
    reviewed: str | None  # the label a reviewer gave, or None


def job_version(session: Session, job_id: str) -> tuple[str, str] | None:
    """(model, version) of the job's newest results, or None while it has none."""
    job = get_job(session, job_id)
    stmt = (
        select(Classification.model_version)
        .join(Document, Document.id == Classification.document_id)
        .where(Document.job_id == job_id, Classification.model == job.model)
        .order_by(Classification.updated_at.desc())
        .limit(1)
    )
    version = session.scalar(stmt)
    return None if version is None else (job.model, version)


def seed_of(session: Session, job_id: str) -> str:
    """The job's sample seed: ``options["review_seed"]`` when set, else the job's id (random, and
    fixed from the job's creation: reading a sample never writes, so two first readers agree)."""
    job = get_job(session, job_id)
    return str((job.options or {}).get(SEED_KEY) or job.id)


def sample(session: Session, job_id: str, mode: str, n: int) -> list[Sampled]:
    """The first ``n`` documents of the job's sample in ``mode``, unreviewed ones first."""
    if mode not in MODES:
        raise InputError(f"unknown review mode {mode!r} (expected {' or '.join(MODES)})")
    seed, found = seed_of(session, job_id), job_version(session, job_id)
    if found is None:
        return []
    # Rank on (id, score) alone, then read the texts of the n chosen: a job's texts never all load.
    ranked = session.execute(_results(job_id, *found).with_only_columns(Document.id, Classification.score)).all()
    if mode == "random":
        ranked.sort(key=lambda row: sample_key(seed, row.id))
    else:
        ranked.sort(key=lambda row: (row.score, sample_key(seed, row.id)))
    order = {row.id: rank for rank, row in enumerate(ranked[:n])}
    rows = []
    for chunk in _chunks(list(order), CHUNK_IDS):
        rows += session.execute(_results(job_id, *found).where(Document.id.in_(chunk))).all()
    rows.sort(key=lambda row: (row.reviewed is not None, order[row.id]))  # unreviewed first, in sample order
    return [Sampled(row.external_id, row.text, row.label, row.score, row.reviewed) for row in rows]


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _results(job_id: str, model: str, version: str):
    return (
        select(
            Document.id,
            Document.external_id,
            Document.text,
            Classification.label,
            Classification.score,
            Review.label.label("reviewed"),
        )
        .join(Classification, Classification.document_id == Document.id)
        .outerjoin(
            Review,
            (Review.document_id == Document.id) & (Review.model == model) & (Review.model_version == version),
        )
        .where(Document.job_id == job_id, Classification.model == model, Classification.model_version == version)
    )


def record(session: Session, job_id: str, answers: Sequence[dict], reviewer: str, mode: str) -> int:
    """Store reviews ``[{"id": EXTERNAL_ID, "label": LABEL}]`` of the job's newest results; refuses
    the whole list (``InputError``) naming every unknown id and label. Returns how many it stored."""
    if mode not in MODES:
        raise InputError(f"unknown review mode {mode!r} (expected {' or '.join(MODES)})")
    found = job_version(session, job_id)
    if found is None:
        raise InputError(f"job {job_id} has no results to review yet")
    model, version = found
    labels = labels_of(session, version)
    wanted = [str(answer.get("id")) for answer in answers]
    ids = dict(
        session.execute(
            select(Document.external_id, Document.id)
            .join(Classification, Classification.document_id == Document.id)
            .where(Document.job_id == job_id, Document.external_id.in_(wanted), Classification.model_version == version)
        ).all()
    )
    _refuse_unknown(answers, ids, labels)
    for answer in answers:
        document_id = ids[str(answer["id"])]
        session.merge(
            Review(
                document_id=document_id,
                model=model,
                model_version=version,
                label=answer["label"],
                reviewer=reviewer,
                mode=mode,
                created_at=utcnow(),
            )
        )
    return len(answers)


def labels_of(session: Session, version: str) -> list[str]:
    """The labels of a model version (table model_versions)."""
    return list(session.scalar(select(ModelVersion.labels).where(ModelVersion.version == version)) or [])


def _refuse_unknown(answers: Sequence[dict], ids: dict[str, int], labels: list[str]) -> None:
    unknown_ids = [str(a.get("id")) for a in answers if str(a.get("id")) not in ids]
    unknown_labels = sorted({str(a.get("label")) for a in answers if a.get("label") not in labels})
    problems = []
    if unknown_ids:
        problems.append(f"unknown document ids (or not classified): {', '.join(unknown_ids[:20])}")
    if unknown_labels:
        problems.append(f"unknown labels {', '.join(unknown_labels)} (the model's: {', '.join(labels)})")
    if problems:
        raise InputError("; ".join(problems))


def quality(session: Session, job_id: str) -> dict:
    """Per job and per predicted label: reviews, agreement of random-sample reviews with the model
    (and its 95 % Wilson interval), and the expected accuracy (mean calibrated top score)."""
    found = job_version(session, job_id)
    model, version = found if found else (get_job(session, job_id).model, None)
    scores: dict[str, list[float]] = defaultdict(list)
    reviewed, random_total, kept = Counter(), Counter(), Counter()
    if found:
        for row in session.execute(_results(job_id, model, version).add_columns(Review.mode)):
            scores[row.label].append(row.score)
            if row.reviewed is not None:
                reviewed[row.label] += 1
                if row.mode == "random":
                    random_total[row.label] += 1
                    kept[row.label] += row.reviewed == row.label
    every = [score for values in scores.values() for score in values]
    overall = _estimate(sum(reviewed.values()), sum(random_total.values()), sum(kept.values()), every)
    per_label = {
        label: _estimate(reviewed[label], random_total[label], kept[label], scores[label]) for label in sorted(scores)
    }
    return {"id": job_id, "model": model, "model_version": version, **overall, "labels": per_label}


def _estimate(reviewed: int, random_reviews: int, kept: int, scores: list[float]) -> dict:
    interval = wilson(kept, random_reviews)
    expected = sum(scores) / len(scores) if scores else None
    warning = None
    if interval is not None and expected is not None and not interval[0] <= expected <= interval[1]:
        warning = (
            f"expected accuracy {expected:.3f} is outside the reviewed agreement's 95% interval "
            f"[{interval[0]:.3f}, {interval[1]:.3f}]: the model's scores are miscalibrated here"
        )
    return {
        "documents": len(scores),
        "reviewed": reviewed,
        "reviewed_random": random_reviews,
        "agreement": kept / random_reviews if random_reviews else None,
        "interval": list(interval) if interval else None,
        "expected_accuracy": expected,
        "warning": warning,
    }


def progress(session: Session, job_id: str) -> tuple[int, int]:
    """(reviewed, classified) documents of the job's newest results."""
    found = job_version(session, job_id)
    if found is None:
        return 0, 0
    counts = session.execute(_results(job_id, *found).with_only_columns(func.count(), func.count(Review.label))).one()
    return counts[1], counts[0]


def export(session: Session, model: str, mode: str | None = None) -> Iterator[dict]:
    """Every review of ``model``'s results (of one ``mode`` when given) as ``{"text", "label"}``,
    oldest first (for `lstmq train`, or `lstmq calibrate --reviews` with random-sample ones)."""
    stmt = (
        select(Document.text, Review.label)
        .join(Review, Review.document_id == Document.id)
        .where(Review.model == model)
        .order_by(Review.created_at, Review.document_id)
    )
    if mode is not None:
        stmt = stmt.where(Review.mode == mode)
    for text, label in session.execute(stmt):
        yield {"text": text, "label": label}


def field_accuracy(session: Session, model: str) -> list[dict]:
    """Per version of ``model``, newest review first: the random-sample reviews of its results
    over every job, the share that kept the model's label, and its 95 % Wilson interval."""
    kept = func.sum(case((Review.label == Classification.label, 1), else_=0))
    stmt = (
        select(Review.model_version, func.count(), kept, func.max(Review.created_at))
        .join(
            Classification,
            (Classification.document_id == Review.document_id)
            & (Classification.model == Review.model)
            & (Classification.model_version == Review.model_version),
        )
        .where(Review.model == model, Review.mode == "random")
        .group_by(Review.model_version)
        .order_by(func.max(Review.created_at).desc())
    )
    found = []
    for version, reviewed, agreed, _ in session.execute(stmt):
        interval = wilson(int(agreed), reviewed)
        found.append({"version": version, "reviewed": reviewed, "agreement": agreed / reviewed, "interval": interval})
    return found
