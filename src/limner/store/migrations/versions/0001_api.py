"""API keys, usage and stored files.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, index=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("images_per_minute", sa.Integer, nullable=True),
        sa.Column("images_per_day", sa.Integer, nullable=True),
        sa.Column("minute", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("used_minute", sa.Integer, nullable=False, server_default="0"),
        sa.Column("day", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_day", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=True, index=True),
        sa.Column("user_id", sa.Integer, nullable=True, index=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False, index=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("pixels", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=True, index=True),
        sa.Column("user_id", sa.Integer, nullable=True, index=True),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("usage")
    op.drop_table("api_keys")
