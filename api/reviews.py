"""Reviews and quality: a job's review sample, reviewers' answers (scope review), and the job's
reviewed agreement beside its expected accuracy (as `lstmq quality`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from lstmq.api import schemas
from lstmq.api.auth import read_access, require
from lstmq.api.deps import EngineDep
from lstmq.api.jobs import JobId
from lstmq.api.tokens import Caller
from lstmq.db.engine import session_scope
from lstmq.reviews import MODES, job_version, labels_of, progress, quality, record, sample

MAX_SAMPLE = 10_000
Mode = Annotated[Literal[MODES], Query(description="random (estimates accuracy) or least-confident (lowest scores).")]
api = APIRouter(tags=["reviews"])


class Answer(BaseModel):
    id: str = Field(description="A document id of the job.")
    label: str = Field(description="One of the model version's labels.")


@api.get(
    "/jobs/{job_id}/review-sample",
    dependencies=[read_access],
    response_model=schemas.ReviewSample,
    summary="The first n documents of the job's fixed review sample, unreviewed first",
)
def review_sample(
    job_id: JobId,
    engine: EngineDep,
    mode: Mode = "random",
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLE, description="Sample size; a larger n extends the same sample.")] = 50,
) -> dict:
    with session_scope(engine) as session:
        docs = sample(session, job_id, mode, n)
        found = job_version(session, job_id)
        labels = labels_of(session, found[1]) if found else []
    documents = [asdict(doc) for doc in docs]
    reviewed = sum(doc.reviewed is not None for doc in docs)
    return {"id": job_id, "mode": mode, "labels": labels, "reviewed": reviewed, "documents": documents}


@api.post(
    "/jobs/{job_id}/reviews",
    response_model=schemas.ReviewsRecorded,
    summary="Record reviewers' labels (the model's results stay as they are)",
)
def post_reviews(
    job_id: JobId,
    engine: EngineDep,
    caller: Annotated[Caller, Depends(require("review"))],
    answers: Annotated[list[Answer], Body(max_length=MAX_SAMPLE)],
    mode: Mode = "random",
) -> dict:
    with session_scope(engine) as session:
        recorded = record(session, job_id, [answer.model_dump() for answer in answers], caller.name, mode)
        session.flush()
        reviewed, total = progress(session, job_id)
    return {"id": job_id, "recorded": recorded, "reviewed": reviewed, "total": total}


@api.get(
    "/jobs/{job_id}/quality",
    dependencies=[read_access],
    response_model=schemas.JobQuality,
    summary="Reviewed agreement (95 % interval) beside expected accuracy, per job and label",
)
def job_quality(job_id: JobId, engine: EngineDep) -> dict:
    with session_scope(engine) as session:
        return quality(session, job_id)
