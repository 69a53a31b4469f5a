"""Durable Image Creator jobs: the request, the claim (worker, attempts), cancellation and times
on each job; worker heartbeats; per-account counters of jobs per day and jobs in flight.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JOB_COLUMNS = [
    sa.Column("request", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("worker", sa.String(40), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("started", sa.DateTime, nullable=True),
    sa.Column("finished", sa.DateTime, nullable=True),
]
USER_COLUMNS = [
    sa.Column("jobs_day", sa.Integer, nullable=False, server_default="0"),
    sa.Column("jobs_today", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active_jobs", sa.Integer, nullable=False, server_default="0"),
]


def upgrade() -> None:
    for column in JOB_COLUMNS:
        op.add_column("jobs", column)
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_worker", "jobs", ["worker"])
    for column in USER_COLUMNS:
        op.add_column("users", column)
    op.create_table(
        "workers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("host", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat", sa.DateTime, nullable=False),
    )
    # Jobs left queued or running by a server before this version ran in memory only: they can
    # never finish now, so they end visibly (their boosts were a day's allowance, long refilled).
    op.execute("UPDATE jobs SET status = 'failed', error = 'the server restarted before it ran' "
               "WHERE status IN ('queued', 'running')")  # fmt: skip


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("users") as batch:
        for column in USER_COLUMNS:
            batch.drop_column(column.name)
    op.drop_index("ix_jobs_worker", "jobs")
    op.drop_index("ix_jobs_status", "jobs")
    with op.batch_alter_table("jobs") as batch:
        for column in JOB_COLUMNS:
            batch.drop_column(column.name)
