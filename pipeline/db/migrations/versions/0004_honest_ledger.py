"""The honest ledger: records to confirm, penalties still shown past their period,
restrictions on repair, and who confirmed a manual delivery and how.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # All nullable: existing rows are re-derived by the next evaluation (verify_reason and
    # overdue_display_since by the lifecycle, restrictions by the evaluator).
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verify_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("overdue_display_since", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("restrictions", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("notified_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("notified_method", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        for column in (
            "notified_method",
            "notified_by",
            "restrictions",
            "overdue_display_since",
            "verify_reason",
        ):
            batch_op.drop_column(column)
