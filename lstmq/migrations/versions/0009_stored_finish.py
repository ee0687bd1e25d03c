"""a job's end is stored: a queued job with nothing pending becomes finished, its finished_at
when its last document got a result (what status queries used to derive and fill in lazily);
jobs get an index on state, for `WHERE state = 'finished'` and the open jobs

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


def upgrade() -> None:
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.execute(FINISH)


def downgrade() -> None:
    op.execute(UNFINISH)
    op.drop_index("ix_jobs_state", table_name="jobs")
