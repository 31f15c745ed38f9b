"""records.raw_hash: a fingerprint of the raw snapshot row, so sync can skip unchanged rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: existing records get NULL, which the next sync of their
    # source treats as "not known to be unchanged" (validated in full, then filled in).
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_hash", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("raw_hash")
