"""dispatch from the database: jobs get a priority, an owner and a dispatch cursor; batches in
flight, owners' weights and leases get tables; tokens a maximum priority; schedules a priority;
workers say how many batches they run at once. Jobs already queued keep cursor 0, so their
pending documents are sent again once (a document already done is skipped by its worker)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("priority", sa.String(8), server_default="normal", nullable=False))
    op.add_column("jobs", sa.Column("owner", sa.String(64), server_default="", nullable=False))
    op.add_column("jobs", sa.Column("dispatched_id", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("schedules", sa.Column("priority", sa.String(8), server_default="normal", nullable=False))
    op.add_column("api_tokens", sa.Column("max_priority", sa.String(8), server_default="high", nullable=False))
    op.add_column("workers", sa.Column("slots", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "batches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("docs", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("receipts", sa.Integer(), nullable=False),
        sa.Column("kills", sa.Integer(), nullable=False),
    )
    op.create_index("ix_batches_queue_state", "batches", ["queue", "state"])
    op.create_index("ix_batches_job", "batches", ["job_id"])
    op.create_table(
        "owners",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("weight", sa.Integer(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("owners")
    op.drop_index("ix_batches_job", table_name="batches")
    op.drop_index("ix_batches_queue_state", table_name="batches")
    op.drop_table("batches")
    # Plain DROP COLUMN (SQLite 3.35+): a batch-mode copy of jobs would cascade to its documents.
    op.drop_column("workers", "slots")
    op.drop_column("api_tokens", "max_priority")
    op.drop_column("schedules", "priority")
    for name in ("dispatched_id", "owner", "priority"):
        op.drop_column("jobs", name)
