"""records.decision_key: the key a record is matched by, apart from its decision number as
published (issue 12: 〔〕 [] ﹝﹞ () （） 【】, spaces, 第03号 vs 第3号 are one decision).

`decision_no` keeps the text shown everywhere (the number as published, from the next sync
on; until then the normalised form stored before); `decision_key` is
`pipeline.sync.normalize.decision_key` of it, and the unique key becomes (kind, authority,
decision_key). Two records of one authority whose numbers now give one key (an export
that once changed its brackets made a second record, the first vanished): the current one
(not vanished, latest sync) keeps the key, the others get `<key>#<id>`, so that none is
lost and the next sync matches the current one.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from pipeline.sync.normalize import decision_key

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_key", sa.String(length=200), nullable=True))
    _fill_keys(op.get_bind())
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.alter_column("decision_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_constraint("uq_records_key", type_="unique")
        batch_op.create_unique_constraint("uq_records_key", ["kind", "authority", "decision_key"])


def _fill_keys(conn: Any) -> None:
    records = sa.table(
        "records",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("authority", sa.String),
        sa.column("decision_no", sa.String),
        sa.column("decision_key", sa.String),
        sa.column("vanished_on", sa.Date),
        sa.column("last_sync_id", sa.Integer),
    )
    r = records.c
    # the preferred record of a key first: current, then the latest synced
    query = sa.select(r.id, r.kind, r.authority, r.decision_no).order_by(
        r.vanished_on.is_not(None), r.last_sync_id.desc(), r.id.desc()
    )
    taken: set[tuple[str, str, str]] = set()
    updates: list[dict[str, Any]] = []
    stmt = (
        records.update()
        .where(r.id == sa.bindparam("b_id"))
        .values(decision_key=sa.bindparam("b_key"))
    )
    for row_id, kind, authority, number in conn.execute(query).all():
        try:
            key = decision_key(number) or number
        except ValueError:
            key = number
        if (kind, authority, key) in taken:
            key = f"{key}#{row_id}"
        taken.add((kind, authority, key))
        updates.append({"b_id": row_id, "b_key": key[:200]})
        if len(updates) >= BATCH:
            conn.execute(stmt, updates)
            updates.clear()
    if updates:
        conn.execute(stmt, updates)


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_records_key", type_="unique")
        batch_op.create_unique_constraint("uq_records_key", ["kind", "authority", "decision_no"])
        batch_op.drop_column("decision_key")
