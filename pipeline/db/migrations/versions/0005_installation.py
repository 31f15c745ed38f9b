"""When the installation started its schedule: a new installation does not catch up the
monthly jobs of the month it wakes up in.

An installation upgraded with a history keeps it: its start is its first job run (or, with
none, its first sync); a new one gets its row at its first `init` or scheduler tick.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installed_at", UTCDateTime(), nullable=False),
        sa.Column("how", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    for table in ("job_runs", "sync_runs"):  # copied as stored (naive UTC on both databases)
        op.execute(
            f"INSERT INTO installation (id, installed_at, how) SELECT 1, min(started_at), 'upgrade' "
            f"FROM {table} HAVING min(started_at) IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM installation)"
        )


def downgrade() -> None:
    op.drop_table("installation")
