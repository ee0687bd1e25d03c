"""The OpenAPI description documents what each route answers: every JSON response under
/api/v1 has a schema whose fields are named and described, the routes that stream declare their
media types, and the response models name the fields the routes send, in their order.

No server: the description is built from the routes (``create_app().openapi()``).
"""

from __future__ import annotations

from dataclasses import fields

import pytest

from lstmq.api import schemas
from lstmq.api.app import API_PREFIX, create_app
from lstmq.db.queries import JobStatus
from lstmq.db.schema import Schedule, ScheduleRun
from lstmq.producer.output import JOB_KEYS, RENDER_COLUMNS
from lstmq.producer.schedules.output import run_dict, schedule_dict
from lstmq.producer.schedules.scan import ScanResult

SPEC = create_app().openapi()
COMPONENTS = SPEC["components"]["schemas"]
V1 = [(method, path) for path, item in SPEC["paths"].items() if path.startswith(API_PREFIX) for method in item]
# Routes that stream, and the media types each must declare (beside JSON, where it has a JSON form).
STREAMING = {
    ("get", "/api/v1/jobs/{job_id}/results"): {
        "application/x-ndjson",
        "text/csv",
        "application/json",
        "application/vnd.apache.parquet",
    },
    ("get", "/api/v1/images/{path}"): {"image/png"},
}
ONLY_STREAMED = [("get", "/api/v1/images/{path}")]
JSON_ANSWERS = [op for op in V1 if op not in ONLY_STREAMED]


def success(method: str, path: str) -> dict:
    """The operation's 200 or 201 response."""
    responses = SPEC["paths"][path][method]["responses"]
    return responses.get("200") or responses["201"]


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def referenced(schema: dict, seen: set[str]) -> None:
    """The names of the component schemas ``schema`` reaches, into ``seen``."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        if name in seen:
            return
        seen.add(name)
        schema = COMPONENTS[name]
    for value in schema.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, dict):
                referenced(child, seen)


def test_the_description_lists_the_v1_routes():
    # Guards the parametrized tests below against passing on an empty list.
    assert {("post", "/api/v1/jobs"), ("get", "/api/v1/jobs/{job_id}"), ("get", "/api/v1/models")} <= set(V1)


@pytest.mark.parametrize("method, path", JSON_ANSWERS)
def test_every_json_answer_has_a_schema_with_properties(method, path):
    schema = resolve(success(method, path)["content"]["application/json"]["schema"])
    assert schema.get("properties"), f"{method.upper()} {path}"


@pytest.mark.parametrize("method, path", list(STREAMING))
def test_streaming_routes_declare_their_media_types(method, path):
    assert set(success(method, path)["content"]) == STREAMING[method, path]


def test_the_json_lines_rows_are_described_by_the_result_row_schema():
    declared = success("get", "/api/v1/jobs/{job_id}/results")["content"]["application/x-ndjson"]
    assert resolve(declared["itemSchema"]) == COMPONENTS["ResultRow"]


def test_every_field_of_every_answer_is_described():
    names: set[str] = set()
    for method, path in V1:
        for media in success(method, path)["content"].values():
            for key in ("schema", "itemSchema"):
                referenced(media.get(key, {}), names)
    silent = [
        f"{name}.{field}"
        for name in names
        for field, s in COMPONENTS[name]["properties"].items()
        if not s.get("description")
    ]
    assert {"Job", "JobPage", "Submission", "ResultRow", "ScheduleHistory"} <= names
    assert silent == []


# --- the models name what the routes send, in order (JSON keys keep their order) --------------


def test_the_status_object_has_the_fields_of_lstmq_status_json():
    assert list(schemas.JobStatus.model_fields) == [field.name for field in fields(JobStatus)]


def test_a_job_list_row_has_the_columns_of_lstmq_jobs_json_and_health():
    assert list(schemas.JobSummary.model_fields) == [*JOB_KEYS, "health"]


def test_a_result_row_has_the_columns_of_lstmq_results():
    assert tuple(schemas.ResultRow.model_fields) == RENDER_COLUMNS


def test_a_schedule_has_the_keys_of_schedule_list_json():
    sched = Schedule(name="s", path_glob="/in/*.jsonl", task="classify", model="news", paused=False)
    assert list(schemas.Schedule.model_fields) == list(schedule_dict(sched, None))


def test_a_schedule_run_has_the_keys_of_schedule_history_json():
    assert list(schemas.ScheduleRun.model_fields) == list(run_dict(ScheduleRun(id=1, problems=[]), {}))


def test_a_run_report_has_the_counts_of_a_scan():
    counts = list(ScanResult().counts())
    assert list(schemas.ScheduleRunReport.model_fields) == ["schedule", "state", "run", "error", *counts, "problems"]
