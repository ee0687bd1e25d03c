"""``GET /api/v1/jobs/{id}/results``: one row per document, streamed as JSON Lines or CSV in
constant memory (``lstmq.db.queries.result_rows`` fetches in rounds; rows are sent in chunks),
or as JSON one page at a time (``lstmq.api.result_pages``: keyset cursor, filters in SQL), or as
Parquet: written a row group at a time to a spool file, which is then sent and removed (a Parquet
file's footer comes last, so it cannot be streamed as it is made; server memory stays flat).

``status`` and the score bounds filter the rows here, beside the query ``lstmq results`` uses.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import Engine
from starlette.background import BackgroundTask

from lstmq.api import schemas
from lstmq.api.auth import read_access
from lstmq.api.deps import EngineDep
from lstmq.api.jobs import JobId
from lstmq.api.result_pages import ResultFilter, results_page
from lstmq.db.engine import session_scope
from lstmq.db.queries import get_job, result_rows
from lstmq.db.schema import DOC_FAILED, Job
from lstmq.errors import InputError
from lstmq.housekeeping import SPOOL_PREFIX
from lstmq.parquet import pyarrow, write_parquet
from lstmq.producer.output import RENDER_COLUMNS, RESULT_COLUMNS

CHUNK_ROWS = 1000  # rows encoded per chunk sent
DEFAULT_PAGE_ROWS = 1000
MAX_PAGE_ROWS = 10_000
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
api = APIRouter(tags=["results"])


@dataclass(frozen=True)
class RowFilter:
    status: str | None
    min_score: float | None
    max_score: float | None

    def keep(self, row: dict) -> bool:
        if self.status is not None and row["status"] != self.status:
            return False
        score = row["score"]
        if self.min_score is not None and (score is None or score < self.min_score):
            return False
        return self.max_score is None or (score is not None and score <= self.max_score)


@api.get(
    "/jobs/{job_id}/results",
    dependencies=[read_access],
    response_model=schemas.ResultsPage,
    response_model_exclude_unset=True,  # image_path only in the rows of render jobs, as streamed
    responses=schemas.STREAMED_RESULTS,
    summary="One row per document, streamed or paged",
)
def results(
    job_id: JobId,
    engine: EngineDep,
    format: Literal["jsonl", "csv", "json", "parquet"] = "jsonl",
    label: Annotated[str | None, Query(description="Only documents classified as this label.")] = None,
    status: Literal["pending", "done", "failed"] | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_ROWS, description="Rows per page (json).")] = None,
    after: Annotated[int | None, Query(ge=0, description="The `next` of the previous page (json).")] = None,
):
    if format == "json":
        where = ResultFilter(label, status, min_score, max_score, after=after or 0)
        with session_scope(engine) as session:
            return _page(session, get_job(session, job_id), where, limit or DEFAULT_PAGE_ROWS)
    if limit is not None or after is not None:
        raise InputError("limit and after page the json format; jsonl and csv stream every row")
    if format == "parquet":
        return _parquet(engine, job_id, label, RowFilter(status, min_score, max_score))
    chunks = _encoded(engine, job_id, format, label, RowFilter(status, min_score, max_score))
    next(chunks)  # the job exists and the filters fit it: errors become problems, not a cut stream
    headers = {"Content-Disposition": f'attachment; filename="{job_id}.{format}"'}
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format], headers=headers)


def _page(session, job: Job, where: ResultFilter, limit: int) -> dict:
    """``{"results": [...], "next": cursor or None}``, rows as in the streamed forms."""
    _check_filters(job, where.label, where.min_score, where.max_score)
    rows, after = results_page(session, job, where, limit)
    return {"results": [_result(row, job) for row in rows], "next": after}


def _result(row, job: Job) -> dict:
    values = row._mapping
    out = {"id": row.external_id, "label": values.get("label"), "score": values.get("score"), "model": job.model}
    out |= {"model_version": row.model_version, "status": row.status, "error": row.error}
    if job.task == "render":
        out["image_path"] = row.path
    return out


def _check_filters(job: Job, label: str | None, min_score: float | None, max_score: float | None) -> None:
    if job.task != "classify" and (label is not None or min_score is not None or max_score is not None):
        raise InputError(f"label, min_score and max_score apply to classify jobs; job {job.id} is a {job.task} job")


def _encoded(engine: Engine, job_id: str, fmt: str, label: str | None, where: RowFilter) -> Iterator[bytes]:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        _check_filters(job, label, where.min_score, where.max_score)
        rows = result_rows(session, job, label=label, failed_only=where.status == DOC_FAILED)
        head = list(islice(rows, 1))  # runs the query now (and result_rows' own checks)
        yield b""
        columns = RENDER_COLUMNS if job.task == "render" else RESULT_COLUMNS
        encode = ENCODERS[fmt]
        if fmt == "csv":
            yield (",".join(columns) + "\n").encode()  # the header: plain names, nothing to quote
        kept = filter(where.keep, chain(head, rows))
        while chunk := list(islice(kept, CHUNK_ROWS)):
            yield encode(chunk, columns)


def _parquet(engine: Engine, job_id: str, label: str | None, where: RowFilter) -> FileResponse:
    """The rows written to a spool file, sent, then removed (also when writing fails)."""
    pyarrow()  # 501 before any work when this server lacks the extra
    folder = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX + "results-"))
    try:
        with session_scope(engine) as session:
            job = get_job(session, job_id)
            _check_filters(job, label, where.min_score, where.max_score)
            rows = result_rows(session, job, label=label, failed_only=where.status == DOC_FAILED)
            write_parquet(filter(where.keep, rows), job.task, str(folder / "results.parquet"))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        folder / "results.parquet",
        media_type=schemas.PARQUET,
        filename=f"{job_id}.parquet",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _jsonl_lines(rows: Iterable[dict], columns) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def _csv_lines(rows: Iterable[dict], columns) -> bytes:
    out = io.StringIO()
    csv.DictWriter(out, fieldnames=columns, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


ENCODERS = {"jsonl": _jsonl_lines, "csv": _csv_lines}
