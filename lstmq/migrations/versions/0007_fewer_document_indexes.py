"""documents lose their single-column indexes on external_id and content_hash: lstmq never
looks a document up by either alone (the unique (job_id, external_id) answers per-job lookups),
and each was written on every recorded document and again on every status change

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_external_id")
        batch_op.drop_index("ix_documents_content_hash")


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index("ix_documents_content_hash", ["content_hash"], unique=False)
        batch_op.create_index("ix_documents_external_id", ["external_id"], unique=False)
