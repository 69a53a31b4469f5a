"""Provenance: the ``marks`` table (a watermark's payload is one of its ids, encrypted) and, per
API key, the operator flag and the watermark / content-credentials switches (NULL: the server's).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEY_COLUMNS = [
    sa.Column("operator", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("watermark", sa.Boolean, nullable=True),
    sa.Column("content_credentials", sa.Boolean, nullable=True),
]


def upgrade() -> None:
    for column in KEY_COLUMNS:
        op.add_column("api_keys", column)
    op.create_table(
        "marks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
    )
    op.create_index("ix_marks_created", "marks", ["created"])
    op.create_index("ix_marks_fingerprint", "marks", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_marks_fingerprint", "marks")
    op.drop_index("ix_marks_created", "marks")
    op.drop_table("marks")
    with op.batch_alter_table("api_keys") as batch:
        for column in KEY_COLUMNS:
            batch.drop_column(column.name)
