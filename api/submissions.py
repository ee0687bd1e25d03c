"""``POST /api/v1/jobs``: the body is the input file; it goes through the readers and
``lstmq.producer.submit.submit_records`` exactly as ``lstmq submit FILE`` does, in a thread.

The body is spooled to disk first (bounded memory), parameters and model are checked before
it is read, and the answer carries the job id, the counts and the first rejected lines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lstmq.api import schemas
from lstmq.api.auth import SubmitCaller
from lstmq.api.deps import CeleryDep, EngineDep
from lstmq.api.idempotency import MAX_KEY_CHARS, Claim
from lstmq.api.problems import kind_of, problem
from lstmq.api.rejections import KeptRejections
from lstmq.api.uploads import Upload, format_of, spooled
from lstmq.contract import MAX_BATCH_DOCS
from lstmq.db.schema import DEFAULT_PRIORITY, PRIORITIES
from lstmq.errors import InputError
from lstmq.producer.submit import check_model, check_task, submit_records
from lstmq.readers.records import Fields
from lstmq.readers.sources import FORMATS, Source, read_sources
from lstmq.settings import get_settings
from lstmq.webhooks.receivers import check_receivers

NEW_OPTIONS = {"notify": (), "reuse": True}  # options added later, with their defaults
UPLOAD_NAME = "<upload>"  # the source in FILE:LINE messages and in jobs.sources
api = APIRouter(tags=["jobs"])


@dataclass(frozen=True)
class SubmitOptions:
    task: str
    model: str
    format: str | None
    text_field: str
    id_field: str
    batch_size: int | None
    strict: bool
    priority: str
    notify: tuple[str, ...] = ()
    reuse: bool = True


def submit_options(
    model: Annotated[str, Query(min_length=1, description="Installed model name (GET /api/v1/models).")],
    task: Annotated[str, Query(description="classify or render")] = "classify",
    format: Annotated[Literal[FORMATS] | None, Query(description="Default: from Content-Type, else jsonl.")] = None,
    text_field: Annotated[str, Query(min_length=1)] = "text",
    id_field: Annotated[str, Query(min_length=1)] = "id",
    batch_size: Annotated[int | None, Query(ge=1, le=MAX_BATCH_DOCS, description="Documents per message.")] = None,
    strict: Annotated[bool, Query(description="Refuse the whole input if any record is bad.")] = False,
    priority: Annotated[
        Literal[PRIORITIES],
        Query(description="high, normal or low: served in this order at batch boundaries (up to the token's maximum)."),
    ] = DEFAULT_PRIORITY,
    notify: Annotated[
        list[str] | None,
        Query(
            description="A webhook receiver of the job's events (repeatable; the server needs LSTMQ_WEBHOOK_SECRET)."
        ),
    ] = None,
    reuse: Annotated[
        bool,
        Query(
            description="false: run the model on every document, even where a result of the same text and model "
            "version exists (by default that result is copied)."
        ),
    ] = True,
) -> SubmitOptions:
    notify_urls = tuple(notify or ())
    return SubmitOptions(task, model, format, text_field, id_field, batch_size, strict, priority, notify_urls, reuse)


@api.post(
    "/jobs",
    status_code=201,
    response_model=schemas.Submission,
    summary="Submit a file (the request body) as a job",
    response_description="The job it became; `Location` names it.",
)
async def create_job(
    request: Request,
    options: Annotated[SubmitOptions, Depends(submit_options)],
    caller: SubmitCaller,
    engine: EngineDep,
    app: CeleryDep,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY_CHARS)] = None,
) -> JSONResponse:
    caller.check_priority(options.priority)
    await run_in_threadpool(_check, options)  # before reading what may be a large body
    options = replace(options, format=format_of(request, options.format))
    async with spooled(request) as upload:
        claim = (
            Claim(engine, caller.token_id, idempotency_key, _request_hash(options, upload)) if idempotency_key else None
        )
        first = await run_in_threadpool(claim.replay_or_take) if claim else None
        if first is not None:
            return _created(first, replayed=True)
        return await _record(engine, app, upload, options, claim, caller.name)


def _check(options: SubmitOptions) -> None:
    check_task(options.task)
    check_model(options.task, options.model)
    check_receivers(options.notify, get_settings())


def _request_hash(options: SubmitOptions, upload: Upload) -> str:
    # Options left at their defaults hash as before they existed (a retry across an upgrade replays).
    fields = {key: value for key, value in asdict(options).items() if NEW_OPTIONS.get(key, object()) != value}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode() + upload.sha256.encode()).hexdigest()


async def _record(engine, app, upload: Upload, options: SubmitOptions, claim: Claim | None, owner: str) -> JSONResponse:
    kept = KeptRejections()
    try:
        body = await run_in_threadpool(_submit, engine, app, upload, options, kept, claim, owner)
    except BaseException as exc:
        if claim:
            await run_in_threadpool(claim.release)
        if isinstance(exc, InputError):  # refused input: say which lines were bad
            return problem(422, str(exc), kind_of(exc), first_rejected=kept.first())
        raise
    if claim:
        await run_in_threadpool(claim.settle, body["id"], body)
    return _created(body)


def _submit(
    engine, app, upload: Upload, options: SubmitOptions, kept: KeptRejections, claim: Claim | None, owner: str
) -> dict:
    # A Source of our own, not resolve_sources(path): messages name the upload, not a temporary
    # path, and resolving adds nothing here (the file exists, the format is checked above).
    sources = [Source(UPLOAD_NAME, upload.path, options.format)]
    report = submit_records(
        engine,
        app,
        read_sources(sources, Fields(text=options.text_field, id=options.id_field)),
        task=options.task,
        model=options.model,
        batch_size=options.batch_size,
        strict=options.strict,
        sources=[UPLOAD_NAME],
        priority=options.priority,
        owner=owner,
        notify=options.notify,
        reuse=options.reuse,
        on_reject=kept,
        on_job=claim.attach if claim else None,
    )
    kept.store(engine, report.job_id)
    # Through the declared model (the route returns its own JSONResponse, which FastAPI does not check).
    created = schemas.Submission(
        id=report.job_id,
        total=report.total,
        rejected=report.rejected,
        batches=report.batches,
        first_rejected=kept.first(),
    )
    return created.model_dump(mode="json")


def _created(body: dict, replayed: bool = False) -> JSONResponse:
    headers = {"Location": f"/api/v1/jobs/{body['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=201, headers=headers)
