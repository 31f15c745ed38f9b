"""records.evaluated_key: what a record's eligibility was computed from (the evaluator's
fingerprint and the record's content hash), so the daily recompute skips the records
whose facts, rules and calendar did not change and whose status did not move.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: a record without it is evaluated in full by the next recompute.
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evaluated_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("evaluated_key")
