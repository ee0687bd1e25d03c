"""Tables. The database is the source of truth; Redis is only transport.

- ``jobs``: one submission (or one scheduled run).
- ``documents``: every accepted record of a job, recorded *before* it is queued, with its
  per-document ``status`` (pending/done/failed) and ``error``; ``jobs`` keeps their counts.
- ``classifications`` / ``images``: one result per (document, model, model_version),
  written as upserts so a redelivered batch rewrites the same rows.
- ``model_versions``: what each content-derived version id means (name, labels, config).
- ``reviews``: labels people gave a job's documents, beside (never over) the model's result.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

DOC_PENDING, DOC_DONE, DOC_FAILED = "pending", "done", "failed"
# The predicate of the partial index on done documents' hashes (lstmq.dispatch.reuse spells it
# the same way in its query: with a bound parameter, neither planner could tell the index applies).
DONE_SQL = text(f"status = '{DOC_DONE}'")
JOB_SUBMITTING, JOB_QUEUED, JOB_CANCELLED = "submitting", "queued", "cancelled"
# Stored by the transaction that gives a queued job's last pending document its result
# (lstmq.db.transitions.count), or by the end of recording when everything was done already.
JOB_FINISHED = "finished"
# jobs.options key while a submit still reads the job's input (lstmq.sending).
RECORDING = "recording"
BATCH_QUEUED, BATCH_RUNNING = "queued", "running"  # sent and waiting in the broker; taken by a worker
PRIORITIES = ("high", "normal", "low")  # served in this order, at batch boundaries
DEFAULT_PRIORITY = "normal"
DEFAULT_WEIGHT = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored moment with its zone: SQLite hands back naive datetimes; everything we store is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(16))  # classify | render
    model: Mapped[str] = mapped_column(String(128))
    # submitting -> queued -> finished (stored with finished_at when nothing is pending; back to
    # queued when requeue --failed reopens documents); submitting or queued -> cancelled.
    state: Mapped[str] = mapped_column(String(16), default=JOB_SUBMITTING)
    total: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    sources: Mapped[list] = mapped_column(JSON, default=list)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The reconciler's last re-send of the job's orphaned documents, and how many it made.
    recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recoveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Kept by every status change, in its transaction (lstmq.db.transitions), so reading a job's
    # state never counts its documents: pending = total - done - failed.
    done_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Of the done ones, those whose result was copied from another document (lstmq.dispatch.reuse).
    reused_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last change to its documents: recorded, or a status moved (their latest updated_at).
    progressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Who is served first (lstmq.dispatch): priority, then fair share between owners by weight.
    priority: Mapped[str] = mapped_column(String(8), default=DEFAULT_PRIORITY, server_default=DEFAULT_PRIORITY)
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The dispatch cursor: every pending document with a larger id is still to be sent. Moved by
    # compare-and-set, so two dispatchers never send the same documents; requeue sets it to 0.
    dispatched_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (Index("ix_jobs_created_at", "created_at"), Index("ix_jobs_state", "state"))


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(Text)  # file path, "-" for stdin
    record_no: Mapped[int] = mapped_column(Integer)  # 0-based record number within source
    line_no: Mapped[int] = mapped_column(Integer)  # 1-based line (or row) for FILE:LINE messages
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the UTF-8 text
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DOC_PENDING)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("job_id", "external_id", name="uq_documents_job_external"),
        # id last: the sender's keyset pages (pending, id > last, in id order) read only their
        # page; on (job_id, status) each page sorted every pending document of the job.
        Index("ix_documents_job_status", "job_id", "status", "id"),
        # Done documents by their text (result reuse, lstmq.dispatch.reuse). Partial: a recorded
        # or pending document writes no entry, a status change to done writes one. No index on
        # external_id (migration 0007): every index is written again on every status change.
        Index("ix_documents_done_hash", "content_hash", postgresql_where=DONE_SQL, sqlite_where=DONE_SQL),
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # classifier | generator
    labels: Mapped[list] = mapped_column(JSON, default=list)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Classification(Base):
    __tablename__ = "classifications"

    document_id: Mapped[int] = mapped_column(BigId, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float)
    probs: Mapped[dict] = mapped_column(JSON)  # {label: probability}
    flags: Mapped[list] = mapped_column(JSON, default=list)  # e.g. ["truncated"]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_classifications_label", "model", "label"),
        Index("ix_classifications_version", "model_version"),
    )


class Review(Base):
    """A person's label for a document's result of one model version. The model's result is
    never changed; a second review of the same result replaces the first. ``mode`` says how the
    document was chosen: random (counts towards the job's agreement) or least-confident."""

    __tablename__ = "reviews"

    document_id: Mapped[int] = mapped_column(BigId, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    reviewer: Mapped[str] = mapped_column(String(64))  # token name, or the OS user of the CLI
    mode: Mapped[str] = mapped_column(String(16))  # random | least-confident
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_reviews_model", "model", "created_at"),)


class Image(Base):
    __tablename__ = "images"

    document_id: Mapped[int] = mapped_column(BigId, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)  # relative to LSTMQ_IMAGE_DIR
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    flags: Mapped[list] = mapped_column(JSON, default=list)  # e.g. ["unknown_words"]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # By path: a reused result shares its file, which a prune deletes only when no row names it.
    __table_args__ = (Index("ix_images_version", "model_version"), Index("ix_images_path", "path"))


class Batch(Base):
    """A batch in flight: sent to the broker and not yet finished. The dispatcher keeps each queue
    only as full as its workers can take by counting these; a worker marks its batch running when
    it takes it and deletes the row when the batch's outcome is written. A row left queued (the
    broker lost the message) or running on a dead worker is sent again (lstmq.worker.heal.reconcile)."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(32))
    first_id: Mapped[int] = mapped_column(BigInteger)  # the documents it carries: ids in this range
    last_id: Mapped[int] = mapped_column(BigInteger)
    docs: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8), default=BATCH_QUEUED)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)  # Celery node name
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the beating process
    # When it was last published; NULL when publishing failed (the broker was down): sent again at once.
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sends: Mapped[int] = mapped_column(Integer, default=1)  # publications: the first and each re-send
    receipts: Mapped[int] = mapped_column(Integer, default=0)  # times a worker took it
    kills: Mapped[int] = mapped_column(Integer, default=0)  # workers that died holding it

    __table_args__ = (Index("ix_batches_queue_state", "queue", "state"), Index("ix_batches_job", "job_id"))


class Owner(Base):
    """An owner's weight in the fair share of its priority (CLI users, API token names, schedules)."""

    __tablename__ = "owners"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer, default=DEFAULT_WEIGHT)


class Lease(Base):
    """A named lease: one holder at a time, taken over once it runs out (the dispatcher's leader)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- Scheduled corpora (producer/schedule*.py) -------------------------------------------


class Schedule(Base):
    """A corpus glob re-scanned on an interval or cron; every scheduler host reads it here."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    path_glob: Mapped[str] = mapped_column(Text)  # absolute glob, resolved at `schedule add`
    task: Mapped[str] = mapped_column(String(16))  # classify | render
    model: Mapped[str] = mapped_column(String(128))
    every_s: Mapped[int | None] = mapped_column(Integer, nullable=True)  # interval, or
    cron: Mapped[str | None] = mapped_column(String(128), nullable=True)  # 5-field crontab
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: from file name
    text_field: Mapped[str] = mapped_column(String(128), default="text")
    id_field: Mapped[str] = mapped_column(String(128), default="id")
    paused: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[str] = mapped_column(String(8), default=DEFAULT_PRIORITY, server_default=DEFAULT_PRIORITY)
    # False: its runs' jobs run the model on every document (jobs.options["reuse"]).
    reuse: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Webhook receivers (URLs) given to each job of its runs (jobs.options["notify"]).
    notify: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # A run's lease: the holder's token and expiry (a crashed run's lease simply runs out).
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScheduleRun(Base):
    """One run of a schedule: what it found, what it queued, what it could not read."""

    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # beat | manual | reprocess
    state: Mapped[str] = mapped_column(String(16))  # running | ok | failed | skipped
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    files: Mapped[int] = mapped_column(Integer, default=0)  # files matched by the glob
    files_read: Mapped[int] = mapped_column(Integer, default=0)  # files opened (new or changed)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # read but already processed
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list] = mapped_column(JSON, default=list)  # FILE[:LINE]: reason
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_schedule_runs_schedule", "schedule_id", "started_at"),)


class CorpusFile(Base):
    """How far a schedule has read one file, and how to tell it was replaced or truncated."""

    __tablename__ = "corpus_files"

    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)  # bytes consumed (always a line end)
    lines: Mapped[int] = mapped_column(Integer)  # lines consumed, for FILE:LINE numbering
    head_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the first head_len bytes
    head_len: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CorpusDoc(Base):
    """The ledger: which document (by id, or by text hash) a schedule already queued, and for
    which model version. A run skips a document whose hash is here unchanged."""

    __tablename__ = "corpus_docs"

    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True)
    doc_key: Mapped[str] = mapped_column(String(600), primary_key=True)  # id:<id> | sha256:<hash>
    content_hash: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[int] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """The webhook outbox: one row per (event, receiver), written in the transaction of the event
    (``lstmq.webhooks.events``) and POSTed by the workers' delivery loop until accepted or
    given up (``lstmq.webhooks.delivery``). ``body`` is frozen at the event: every attempt
    sends the same bytes, with the same event id."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32))  # job.finished | job.cancelled | ...
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed (given up)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is due; moved forward by compare-and-set to claim it. None once it is settled.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # HTTP status of the last attempt
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # a short excerpt: body or error
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)


# --- The HTTP API (api/) ------------------------------------------------------------------


class ApiToken(Base):
    """A bearer token of the HTTP API. The token itself is never stored: ``lstmq_<id>_<secret>``
    is shown once, and only a salted SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public part of the token
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(8))  # read | submit | admin
    max_priority: Mapped[str] = mapped_column(String(8), default="high", server_default="high")
    salt: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobRejection(Base):
    """A record an API submission rejected (the CLI prints them instead), kept for
    ``GET /api/v1/jobs/{id}/rejected``."""

    __tablename__ = "job_rejections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_job_rejections_job", "job_id", "id"),)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a token sent with a submission: a retry gets the first answer.
    ``job_id`` is None while the first request is still being recorded."""

    __tablename__ = "idempotency_keys"

    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the query and body
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True)
    response: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- Self-healing (worker/heal/heartbeat.py, worker/heal/reconcile.py) -----------------


class WorkerBeat(Base):
    """A live worker as it last reported itself; a row whose ``beat_at`` is old is a dead worker."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # Celery node name
    pid: Mapped[int] = mapped_column(Integer, primary_key=True)  # two workers may share a name
    queues: Mapped[list] = mapped_column(JSON, default=list)
    models: Mapped[list] = mapped_column(JSON, default=list)  # models its batches have loaded
    device: Mapped[str] = mapped_column(String(16))
    current: Mapped[list] = mapped_column(JSON, default=list)  # [{job_id, model, docs, since}]
    slots: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # batches it runs at once
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
