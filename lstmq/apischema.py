"""The shapes of the HTTP API's JSON responses, as pydantic models: one home for both sides.

``lstmq serve`` declares them as its routes' response models (``lstmq.api.schemas`` re-exports
them), so the OpenAPI description documents every field; ``lstmq.Client`` parses the same JSON
into them. They live in the core because the client does and the core never imports the API.

Reading is lenient: fields a model does not know are ignored, so a client keeps working against
a newer server that sends more. Timestamps are ``datetime`` in Python and ISO 8601 strings on
the wire, written by ``datetime.isoformat`` as ``lstmq status --json`` prints them.

Adding a field (say ``priority`` to jobs): add it to the producing code (``JobStatus`` in
``lstmq.db.queries`` for the status object, ``JOB_KEYS`` in ``lstmq.producer.output`` for list
rows), then one line here in each model that carries it, at the place it has in the JSON.
Shared fields are the ``Annotated`` aliases below, so each is described once. A new field needs
a default (``None``) when older servers do not send it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


# ``datetime.isoformat``, not pydantic's own JSON form: the same bytes as `lstmq status --json`
# ('+00:00', where pydantic would write 'Z').
Timestamp = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ApiModel(BaseModel):
    """Base of the response models: unknown fields are ignored when reading."""

    model_config = ConfigDict(extra="ignore")


# --- jobs --------------------------------------------------------------------------------------

JobId = Annotated[str, Field(description="The job's id.")]
State = Annotated[
    str,
    Field(
        description="submitting (still being recorded), queued (documents pending), finished (none pending) "
        "or cancelled."
    ),
]
Task = Annotated[str, Field(description="classify or render.")]
ModelName = Annotated[str, Field(description="The installed model the job runs (GET /api/v1/models).")]
Total = Annotated[int, Field(description="Documents recorded (rejected lines not counted).")]
Done = Annotated[int, Field(description="Documents with a result (reused ones included).")]
Reused = Annotated[
    int,
    Field(
        description="Of the done documents, those whose result was copied from another document with the same "
        "text and model version instead of running the model."
    ),
]
Failed = Annotated[int, Field(description="Documents that failed (their error is in the results).")]
Pending = Annotated[int, Field(description="Documents waiting for a worker.")]
Rejected = Annotated[int, Field(description="Input lines refused while recording (no document made).")]
CreatedAt = Annotated[Timestamp, Field(description="When the job was created (UTC).")]
ScheduleName = Annotated[str | None, Field(description="The schedule that started the job, if one did.")]
Priority = Annotated[str, Field(description="high, normal or low: served in this order, at batch boundaries.")]
Owner = Annotated[
    str, Field(description="Whose share of the workers it uses: the API token's name, the CLI user, or the schedule.")
]


class Health(ApiModel):
    """A job with pending documents that made no progress for longer than the stall time."""

    recoveries: int = Field(description="Re-sends of its pending documents by the reconciler since it stalled.")
    stalled_since: Timestamp = Field(description="Its last result, or its submission (UTC).")
    recovered_at: Timestamp | None = Field(description="The reconciler's latest re-send (UTC), if any.")


HealthField = Annotated[
    Health | None, Field(description="Set while the job is stalled (as `lstmq status` says), else null.")
]


class JobStatus(ApiModel):
    """A job's counts, rate and ETA: the object ``lstmq status --json`` prints."""

    id: JobId
    state: State
    task: Task
    model: ModelName
    total: Total
    done: Done
    reused: Reused = 0
    failed: Failed
    pending: Pending
    rejected: Rejected
    docs_per_s: float | None = Field(description="Documents finished per second since submission; null before any.")
    eta_s: float | None = Field(description="Seconds until no document is pending at that rate; null when unknown.")
    created_at: CreatedAt
    submitted_at: Timestamp | None = Field(description="When recording ended and the job was queued (UTC).")
    finished_at: Timestamp | None = Field(description="When its last pending document got a result (UTC).")
    schedule: ScheduleName
    note: str | None = Field(None, description="Why lstmq cancelled the job, when lstmq did (e.g. its submit died).")
    priority: Priority = "normal"
    owner: Owner = ""
    in_flight: int = Field(0, description="Its batches sent to workers and not yet finished.")
    waiting: str | None = Field(
        None, description="What an open job with no batch in flight waits for, e.g. '2 higher-priority jobs'."
    )

    @property
    def ended(self) -> bool:
        """Finished or cancelled: nothing more will happen to the job."""
        return self.state in ("finished", "cancelled")


class Job(JobStatus):
    """``GET /api/v1/jobs/{id}``: the status object and the job's health."""

    health: HealthField


class JobSummary(ApiModel):
    """A row of the job list: the columns of ``lstmq jobs --json`` and the job's health."""

    id: JobId
    state: State
    task: Task
    model: ModelName
    total: Total
    done: Done
    reused: Reused = 0
    failed: Failed
    pending: Pending
    rejected: Rejected
    created_at: CreatedAt
    schedule: ScheduleName
    priority: Priority = "normal"
    owner: Owner = ""
    health: HealthField


class JobPage(ApiModel):
    """One page of jobs, newest first."""

    jobs: list[JobSummary] = Field(description="Up to `limit` jobs.")
    next: str | None = Field(description="Pass as `before` for the next page; null on the last page.")


class RejectedLine(ApiModel):
    """An input line the reader refused."""

    line: int = Field(description="Its line number in the upload (1 is the first).")
    reason: str = Field(description="Why it was refused.")


class Submission(ApiModel):
    """``POST /api/v1/jobs``: the job an upload became."""

    id: JobId
    total: Total
    rejected: Rejected
    batches: int = Field(description="Batches its documents make at its batch size (the dispatcher sends them).")
    first_rejected: list[RejectedLine] = Field(description="The first rejected lines (all of them: GET .../rejected).")


class Rejections(ApiModel):
    """The rejected lines an API submission kept."""

    id: JobId
    rejected: Rejected
    stored_limit: int = Field(description="Lines kept per job; past it only `rejected` counts them.")
    lines: list[RejectedLine] = Field(description="The kept lines, in input order.")


class Requeued(ApiModel):
    """What a requeue offered the dispatcher again."""

    id: JobId
    docs: int = Field(description="Documents without a result, to be sent again in the job's turn.")


# --- results -----------------------------------------------------------------------------------


class ResultRow(ApiModel):
    """One document's result: a JSON Lines row, a CSV row, or an item of a JSON page."""

    id: str = Field(description="The document's id from the input (its id field), else its 0-based record number.")
    label: str | None = Field(description="The predicted label (classify jobs); null until done.")
    score: float | None = Field(description="The label's probability, 0 to 1 (classify jobs).")
    model: str = Field(description="The model that ran it.")
    model_version: str | None = Field(description="The model version that wrote the result.")
    status: str = Field(description="pending, done or failed.")
    error: str | None = Field(description="Why the document failed.")
    image_path: str | None = Field(
        None, description="Render jobs only: the image, relative to the image folder (GET /api/v1/images/{path})."
    )


class ResultsPage(ApiModel):
    """``format=json``: one page of results in document order."""

    results: list[ResultRow] = Field(description="Up to `limit` rows.")
    next: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


# --- models and the service ------------------------------------------------------------------


class InstalledModel(ApiModel):
    """A model the workers can run."""

    name: str = Field(description="What `model=` names.")
    version: str = Field(description="Content hash of its weights, tokenizer and architecture.")
    kind: str = Field(description="classifier (for classify jobs) or generator (for render jobs).")
    labels: list[str] = Field(description="The labels a classifier predicts.")
    metrics: dict[str, Any] = Field(description="Evaluation figures from its training, as recorded.")


class BrokenModel(ApiModel):
    """A model folder that cannot be loaded."""

    name: str = Field(description="The folder's name.")
    error: str = Field(description="What is wrong with it.")


class ModelList(ApiModel):
    """``GET /api/v1/models``: the models installed where the API runs."""

    models: list[InstalledModel] = Field(description="Models that load.")
    broken: list[BrokenModel] = Field(description="Model folders that do not.")


class ServiceHealth(ApiModel):
    """``GET /healthz`` when both services answer (else a 503 problem naming the one down)."""

    status: str = Field(description="ok")
    checks: dict[str, str] = Field(description="`database` and `broker`: ok.")


# --- schedules ---------------------------------------------------------------------------------

RunCounts = {
    "files": "Files the glob matched.",
    "files_read": "Files with new lines that were read.",
    "queued": "Documents queued.",
    "skipped": "Documents skipped as already processed.",
    "rejected": "Lines refused.",
}


class ScheduleRun(ApiModel):
    """One run of a schedule."""

    id: int = Field(description="The run's number.")
    trigger: str = Field(description="beat (it fired on time), manual or reprocess.")
    state: str = Field(description="running, ok, failed or skipped (another run held the lease).")
    started_at: Timestamp | None = Field(description="When it started (UTC).")
    finished_at: Timestamp | None = Field(description="When it ended (UTC).")
    files: int = Field(description=RunCounts["files"])
    files_read: int = Field(description=RunCounts["files_read"])
    queued: int = Field(description=RunCounts["queued"])
    skipped: int = Field(description=RunCounts["skipped"])
    rejected: int = Field(description=RunCounts["rejected"])
    job: str | None = Field(description="The job it queued, if any.")
    documents: dict[str, int] | None = Field(description="That job's documents by status (history only).")
    problems: list[str] = Field(description="What went wrong or was noted while reading.")


class Schedule(ApiModel):
    """A schedule: what it reads, when, and with which model."""

    name: str = Field(description="Its unique name.")
    path: str = Field(description="Glob of corpus files on the API's host.")
    task: Task
    model: ModelName
    every_s: int | None = Field(description="Interval in seconds (null for a cron schedule).")
    cron: str | None = Field(description="5-field crontab in UTC (null for an interval).")
    format: str | None = Field(description="Input format; null: from each file's name.")
    text_field: str = Field(description="Field or column holding the text.")
    id_field: str = Field(description="Field or column holding the document id.")
    priority: Priority = "normal"
    paused: bool = Field(description="Paused schedules do not fire.")
    reuse: bool = Field(
        True, description="Its runs' jobs copy the result of a text already done with the same model version."
    )
    created_at: Timestamp = Field(description="When the schedule was added (UTC).")
    last_run: ScheduleRun | None = Field(description="Its latest run (in the list; null elsewhere).")


class ScheduleList(ApiModel):
    """Every schedule with its latest run."""

    schedules: list[Schedule] = Field(description="By name.")


class ScheduleHistory(ApiModel):
    """A schedule and its latest runs, newest first."""

    schedule: Schedule = Field(description="The schedule (its `last_run` is null: the runs follow).")
    runs: list[ScheduleRun] = Field(description="Up to `limit` runs.")


class ScheduleRunReport(ApiModel):
    """What running a schedule now did."""

    schedule: str = Field(description="The schedule's name.")
    state: str = Field(description="ok, failed or skipped (another run holds the lease).")
    run: int | None = Field(description="The run's number in the history.")
    error: str | None = Field(description="Why the run failed.")
    files: int = Field(description=RunCounts["files"])
    files_read: int = Field(description=RunCounts["files_read"])
    queued: int = Field(description=RunCounts["queued"])
    skipped: int = Field(description=RunCounts["skipped"])
    rejected: int = Field(description=RunCounts["rejected"])
    job_id: str | None = Field(description="The job it queued, if any.")
    problems: list[str] = Field(description="What went wrong or was noted while reading.")


# --- reviews and quality ---------------------------------------------------------------------

ReviewMode = Annotated[str, Field(description="random (counts towards agreement) or least-confident.")]


class ReviewDocument(ApiModel):
    """A document of a review sample: the model's label and top calibrated score."""

    id: str = Field(description="The document's id (as in the job's input).")
    text: str = Field(description="The document's text.")
    label: str = Field(description="The model's label.")
    score: float = Field(description="The model's calibrated probability of that label.")
    reviewed: str | None = Field(None, description="The label a reviewer gave, or null.")


class ReviewSample(ApiModel):
    """``GET /api/v1/jobs/{id}/review-sample``: the first n of the job's fixed sample, unreviewed first."""

    id: JobId
    mode: ReviewMode
    labels: list[str] = Field(description="The labels a review may give (the model version's).")
    reviewed: int = Field(description="Documents of this sample already reviewed.")
    documents: list[ReviewDocument] = Field(description="The sample, in its fixed order, unreviewed first.")


class ReviewsRecorded(ApiModel):
    """``POST /api/v1/jobs/{id}/reviews``: how many answers were stored."""

    id: JobId
    recorded: int = Field(description="Answers stored (a document reviewed again keeps the latest).")
    reviewed: int = Field(description="The job's reviewed documents, all modes.")
    total: int = Field(description="The job's classified documents.")


class LabelQuality(ApiModel):
    """Reviewed agreement and expected accuracy, for a job or for the documents given one label."""

    documents: int = Field(description="Classified documents.")
    reviewed: int = Field(description="Of those, reviewed (any mode).")
    reviewed_random: int = Field(description="Reviewed from the random sample: these alone estimate accuracy.")
    agreement: float | None = Field(description="Share of random-sample reviews that kept the model's label.")
    interval: list[float] | None = Field(description="95 % Wilson interval of the agreement, [low, high].")
    expected_accuracy: float | None = Field(description="Mean calibrated top score: the accuracy the model expects.")
    warning: str | None = Field(description="Set when expected accuracy lies outside the agreement's interval.")


class JobQuality(LabelQuality):
    """``GET /api/v1/jobs/{id}/quality`` (as ``lstmq quality JOB --json``)."""

    id: JobId
    model: ModelName
    model_version: str | None = Field(description="The version whose results were reviewed; null before any.")
    labels: dict[str, LabelQuality] = Field(description="The same, per label the model gave.")
