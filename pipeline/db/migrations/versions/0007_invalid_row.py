"""records.invalid_row_id: the record's row in the latest snapshot was quarantined, so the
record was kept as it was instead of vanishing (末次快照行无效).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no foreign key (a quarantine row's id, for the person to look it up):
    # existing records have no invalid row until the next sync says otherwise.
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invalid_row_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("invalid_row_id")
