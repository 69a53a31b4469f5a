"""Arena: curated image pool, battles and voters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arena_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prompt", sa.Text, nullable=False, index=True),
        sa.Column("model", sa.String(200), nullable=False, index=True),
        sa.Column("file_id", sa.String(64), sa.ForeignKey("files.id"), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "arena_battles",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("model_a", sa.String(200), nullable=False),
        sa.Column("model_b", sa.String(200), nullable=False),
        sa.Column("file_a", sa.String(64), sa.ForeignKey("files.id"), nullable=False),
        sa.Column("file_b", sa.String(64), sa.ForeignKey("files.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("voter", sa.String(80), nullable=False, index=True),
        sa.Column("shown_at", sa.DateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True, index=True),
        sa.Column("voted_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "arena_voters",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("day", sa.Integer, nullable=False, server_default="0"),
        sa.Column("votes_day", sa.Integer, nullable=False, server_default="0"),
        sa.Column("votes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("picked_a", sa.Integer, nullable=False, server_default="0"),
        sa.Column("picked_b", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fast", sa.Integer, nullable=False, server_default="0"),
        sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    for t in ("arena_voters", "arena_battles", "arena_images"):
        op.drop_table(t)
