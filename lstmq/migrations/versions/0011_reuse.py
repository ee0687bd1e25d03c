"""result reuse: done documents are found by their text's hash (a partial index: recording and
pending rows never write it), image rows by their file (a prune keeps a file another row still
names), jobs count their reused documents, and a schedule may turn reuse off for its runs

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DONE = sa.text("status = 'done'")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reused_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("schedules", sa.Column("reuse", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_index("ix_documents_done_hash", "documents", ["content_hash"], postgresql_where=DONE, sqlite_where=DONE)
    op.create_index("ix_images_path", "images", ["path"])


def downgrade() -> None:
    op.drop_index("ix_images_path", table_name="images")
    op.drop_index("ix_documents_done_hash", table_name="documents")
    # Plain DROP COLUMN (SQLite 3.35+): a batch-mode copy of jobs would cascade to its documents.
    op.drop_column("schedules", "reuse")
    op.drop_column("jobs", "reused_count")
