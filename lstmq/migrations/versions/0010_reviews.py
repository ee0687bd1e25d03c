"""reviews: a person's label for a document's result, beside the model's (never over it)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column(
            "document_id", BigId, sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, nullable=False
        ),
        sa.Column("model", sa.String(128), primary_key=True, nullable=False),
        sa.Column("model_version", sa.String(64), primary_key=True, nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reviews_model", "reviews", ["model", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_model", table_name="reviews")
    op.drop_table("reviews")
