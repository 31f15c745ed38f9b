"""Migrations and column types on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, Engine, create_engine, inspect, select, text
from sqlalchemy.exc import StatementError

from pipeline.db.engine import session_scope
from pipeline.db.migrate import current_revision, head_revision, upgrade
from pipeline.db.models import Base, Lease

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_migrations_create_the_schema(engine: Engine) -> None:
    tables = _tables(engine)
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert current_revision(engine) is not None
    assert current_revision(engine) == head_revision(engine)


def test_migrated_columns_match_the_models(engine: Engine) -> None:
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name


def test_upgrade_is_idempotent(engine: Engine) -> None:
    before = _tables(engine)
    upgrade(engine)
    upgrade(engine)
    assert _tables(engine) == before
    assert current_revision(engine) == head_revision(engine)


def test_utc_datetime_round_trips_an_aware_datetime_as_utc(engine: Engine) -> None:
    local = dt.datetime(2024, 3, 1, 10, 30, 15, 123456, tzinfo=SHANGHAI)
    with session_scope(engine) as session:
        session.add(Lease(name="runner", holder="test", acquired_at=local))

    with session_scope(engine) as session:
        lease = session.execute(select(Lease).where(Lease.name == "runner")).scalar_one()
        got = lease.acquired_at
    assert got is not None
    assert got == local  # the same instant
    assert got.tzinfo is dt.UTC
    assert got == dt.datetime(2024, 3, 1, 2, 30, 15, 123456, tzinfo=dt.UTC)

    # stored as naive UTC, whatever the database's own time zone
    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT acquired_at FROM leases").columns(acquired_at=DateTime())
        ).scalar_one()
    assert raw == dt.datetime(2024, 3, 1, 2, 30, 15, 123456)


def test_utc_datetime_rejects_naive_datetimes(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(engine) as session:
        session.add(Lease(name="runner", acquired_at=dt.datetime(2024, 3, 1, 10, 30)))
        session.flush()


@pytest.mark.postgres
def test_pg_url_is_a_fresh_postgresql_database(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
            assert conn.execute(text("SELECT current_database()")).scalar_one().startswith("t_")
        assert _tables(engine) == set()
    finally:
        engine.dispose()
