"""The API's response shapes: the JSON models (defined in ``lstmq.apischema``, which
``lstmq.Client`` reads with, re-exported here) and the OpenAPI declarations of the routes that
stream instead of answering JSON (results as JSON Lines or CSV, images as PNG)."""

from __future__ import annotations

from typing import Any

from lstmq.apischema import (
    BrokenModel,
    Health,
    InstalledModel,
    Job,
    JobPage,
    JobQuality,
    JobStatus,
    JobSummary,
    LabelQuality,
    ModelList,
    RejectedLine,
    Rejections,
    Requeued,
    ResultRow,
    ResultsPage,
    ReviewDocument,
    ReviewSample,
    ReviewsRecorded,
    Schedule,
    ScheduleHistory,
    ScheduleList,
    ScheduleRun,
    ScheduleRunReport,
    ServiceHealth,
    Submission,
)
from lstmq.producer.output import RENDER_COLUMNS

__all__ = [
    "BrokenModel",
    "Health",
    "InstalledModel",
    "Job",
    "JobPage",
    "JobQuality",
    "JobStatus",
    "JobSummary",
    "LabelQuality",
    "ModelList",
    "RejectedLine",
    "Rejections",
    "Requeued",
    "ResultRow",
    "ResultsPage",
    "ReviewDocument",
    "ReviewSample",
    "ReviewsRecorded",
    "Schedule",
    "ScheduleHistory",
    "ScheduleList",
    "ScheduleRun",
    "ScheduleRunReport",
    "ServiceHealth",
    "Submission",
    "STREAMED_RESULTS",
    "PNG_IMAGE",
]

JSON_LINES = "application/x-ndjson"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
PNG = "image/png"
_ROW = {"$ref": "#/components/schemas/ResultRow"}  # in the components: ResultsPage refers to it

# GET .../results?format=jsonl|csv: beside the JSON page (the route's response model).
STREAMED_RESULTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`format=jsonl` (the default): one `ResultRow` object per line, streamed; `format=csv`: "
        "a header and one row per document with the same columns (`image_path` for render jobs only), streamed; "
        "`format=json`: one `ResultsPage`; `format=parquet`: a Parquet file with the CSV's columns, typed "
        "(`score` a nullable float64, the others strings).",
        "content": {
            JSON_LINES: {"schema": {"type": "string"}, "itemSchema": _ROW},
            CSV: {"schema": {"type": "string"}, "example": ",".join(RENDER_COLUMNS) + "\n"},
            PARQUET: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

PNG_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The PNG file.", "content": {PNG: {"schema": {"type": "string", "format": "binary"}}}}
}
