"""jobs keep their documents' counts (done, failed) and when one last changed, so status and
job lists never count a job's documents; backfilled from the documents

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# One scan of documents, grouped by job (UPDATE ... FROM: PostgreSQL, and SQLite since 3.33).
BACKFILL = """
UPDATE jobs SET total = counted.n, done_count = counted.done, failed_count = counted.failed,
    progressed_at = counted.last
FROM (
    SELECT job_id, count(*) AS n, sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done,
        sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, max(updated_at) AS last
    FROM documents GROUP BY job_id
) AS counted
WHERE jobs.id = counted.job_id
"""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("done_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("jobs", sa.Column("failed_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("jobs", sa.Column("progressed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: on SQLite a batch copies
    # jobs into a new table and drops the old one, and the drop cascades to every document.
    for name in ("progressed_at", "failed_count", "done_count"):
        op.drop_column("jobs", name)
