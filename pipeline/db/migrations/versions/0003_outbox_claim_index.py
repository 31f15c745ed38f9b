"""The outbox claim index in claim order: (next_attempt_at, id) over the due rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DUE = "state IN ('pending', 'retry')"


def upgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at", "id"],
        unique=False,
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["state", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
