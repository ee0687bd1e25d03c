"""documents' (job_id, status) index ends with id: a keyset page of pending documents reads
only its page, not every pending document of the job

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_job_status")
        batch_op.create_index("ix_documents_job_status", ["job_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_job_status")
        batch_op.create_index("ix_documents_job_status", ["job_id", "status"], unique=False)
