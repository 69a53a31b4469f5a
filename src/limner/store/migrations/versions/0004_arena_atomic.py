"""Arena: each voter's live battles are counted on its row, so the daily cap is one conditional
UPDATE (it was a count of battle rows, checked before generating: a burst of requests all
passed it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("arena_voters", sa.Column("live_day", sa.Integer, nullable=False, server_default="0"))
    op.add_column("arena_voters", sa.Column("live_today", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("arena_voters") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("live_today")
        batch.drop_column("live_day")
