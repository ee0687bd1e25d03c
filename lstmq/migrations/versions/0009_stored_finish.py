"""a job's end is stored: a queued job with nothing pending becomes finished, its finished_at
when its last document got a result (what status queries used to derive and fill in lazily);
jobs get an index on state, for `WHERE state = 'finished'` and the open jobs; webhooks: the
outbox of deliveries, and the receivers a schedule gives its runs' jobs

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FINISH = sa.text(
    "UPDATE jobs SET state = 'finished', "
    "finished_at = COALESCE(finished_at, progressed_at, submitted_at, created_at) "
    "WHERE state = 'queued' AND total = done_count + failed_count"
)
# Before 0009 a finished job was stored as queued (finished_at kept: 0008 code reads it).
UNFINISH = sa.text("UPDATE jobs SET state = 'queued' WHERE state = 'finished'")


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.execute(FINISH)
    op.add_column("schedules", sa.Column("notify", sa.JSON(), server_default="[]", nullable=False))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_job_id", "webhook_deliveries", ["job_id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_job_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_column("schedules", "notify")
    op.execute(UNFINISH)
    op.drop_index("ix_jobs_state", table_name="jobs")
