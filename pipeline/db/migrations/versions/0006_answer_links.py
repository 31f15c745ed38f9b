"""Company answer pages: personal links (codes stored hashed), answers, and the ledger's
view of them (first view, latest answer, the phone left for help).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("outbox_key", sa.String(length=500), nullable=True),
        sa.Column("created_at", pipeline.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pipeline.db.types.UTCDateTime(), nullable=False),
        sa.Column("first_viewed_at", pipeline.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_viewed_at", pipeline.db.types.UTCDateTime(), nullable=True),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name="fk_answer_links_record_id_records"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_answer_links"),
        sa.UniqueConstraint("code_hash", name="uq_answer_links_code_hash"),
    )
    op.create_index("ix_answer_links_record_id", "answer_links", ["record_id"], unique=False)
    op.create_table(
        "company_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("at", pipeline.db.types.UTCDateTime(), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["link_id"], ["answer_links.id"], name="fk_company_answers_link_id_answer_links"
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name="fk_company_answers_record_id_records"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_company_answers"),
    )
    op.create_index("ix_company_answers_link_id", "company_answers", ["link_id"], unique=False)
    op.create_index("ix_company_answers_record_id", "company_answers", ["record_id"], unique=False)
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("viewed_at", pipeline.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("company_answer", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("company_answer_at", pipeline.db.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("help_phone", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        for column in ("help_phone", "company_answer_at", "company_answer", "viewed_at"):
            batch_op.drop_column(column)
    op.drop_index("ix_company_answers_record_id", table_name="company_answers")
    op.drop_index("ix_company_answers_link_id", table_name="company_answers")
    op.drop_table("company_answers")
    op.drop_index("ix_answer_links_record_id", table_name="answer_links")
    op.drop_table("answer_links")
