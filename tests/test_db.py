"""Migrations (from an empty database) and column types on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, Engine, create_engine, inspect, select, text
from sqlalchemy.exc import StatementError

from pipeline.db.engine import normalise_url, session_scope
from pipeline.db.migrate import current_revision, head_revision, upgrade
from pipeline.db.models import Base, Lease

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_migrations_create_the_schema(upgraded_engine: Engine) -> None:
    tables = _tables(upgraded_engine)
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert current_revision(upgraded_engine) is not None
    assert current_revision(upgraded_engine) == head_revision(upgraded_engine)


def test_migrated_columns_match_the_models(upgraded_engine: Engine) -> None:
    inspector = inspect(upgraded_engine)
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name


def test_upgrade_is_idempotent(upgraded_engine: Engine) -> None:
    before = _tables(upgraded_engine)
    upgrade(upgraded_engine)
    upgrade(upgraded_engine)
    assert _tables(upgraded_engine) == before
    assert current_revision(upgraded_engine) == head_revision(upgraded_engine)


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


def test_each_test_gets_its_own_copy_of_the_migrated_template(engine: Engine, db_copy: Any) -> None:
    assert current_revision(engine) == head_revision(engine)
    with session_scope(engine) as session:
        session.add(Lease(name="mine", holder="test"))

    def rebuild(url: str, folder: Any) -> None:
        pytest.fail("the migrated template is built once per session")

    other = create_engine(normalise_url(db_copy("migrated", rebuild)))
    try:
        with other.connect() as conn:
            assert conn.execute(select(Lease.name)).scalars().all() == []
        assert current_revision(other) == head_revision(other)
    finally:
        other.dispose()


def test_an_upgraded_installation_keeps_its_history_as_its_start(empty_db_url: str) -> None:
    """0005: a database with job runs starts its schedule at its first run; a new one has no
    start until its first `init` or tick records it."""
    from pipeline.db.engine import make_engine
    from pipeline.db.models import Installation, JobRun, table_of
    from pipeline.scheduler.runner import installed_at

    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0004")
        first = dt.datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
        with engine.begin() as conn:
            for n, at in enumerate((first + dt.timedelta(days=3), first)):
                conn.execute(
                    table_of(JobRun).insert(),
                    {"run_id": f"r{n}", "job": "sync", "started_at": at, "outcome": "ok"},
                )
        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(select(table_of(Installation))).one()
        assert (row.installed_at, row.how) == (first, "upgrade")
        later = dt.datetime(2026, 12, 1, tzinfo=SHANGHAI)
        assert installed_at(engine, later, "runner") == first  # kept, not overwritten
    finally:
        engine.dispose()


def test_a_new_installation_records_its_start_once(upgraded_engine: Engine) -> None:
    from pipeline.scheduler.runner import installed_at

    start = dt.datetime(2026, 12, 1, 9, 30, tzinfo=SHANGHAI)
    assert installed_at(upgraded_engine, start, "init") == start
    assert installed_at(upgraded_engine, start + dt.timedelta(days=1), "runner") == start


def test_0008_keys_every_record_and_keeps_both_of_two_spellings_of_one_decision(
    empty_db_url: str,
) -> None:
    """0008: `decision_key` for every record; two records that now share a key (an export
    that once changed its brackets): the current one keeps it, the vanished one is kept
    under `<key>#<id>`, so that the next sync matches the current one."""
    import sqlalchemy as sa

    from pipeline.db.engine import make_engine

    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0007")
        old = sa.table(
            "records",
            *(
                sa.column(name)
                for name in [
                    "kind",
                    "authority",
                    "decision_no",
                    "entity_name",
                    "decision_date",
                    "content_hash",
                    "department_code",
                    "source",
                    "first_sync_id",
                    "last_sync_id",
                    "first_seen_on",
                    "vanished_on",
                    "progress",
                    "willingness",
                    "green_channel",
                    "market_regulation",
                ]
            ),
        )
        day = dt.date(2026, 11, 1)
        base = {
            "kind": "penalty",
            "authority": "国家税务总局双鸭山市宝山区税务局",
            "entity_name": "某公司",
            "decision_date": day,
            "content_hash": "0" * 32,
            "department_code": "SWJ",
            "source": "s",
            "first_sync_id": 1,
            "first_seen_on": day,
            "progress": 0,
            "willingness": "unknown",
            "green_channel": False,
            "market_regulation": False,
        }
        with engine.begin() as conn:
            conn.execute(
                old.insert(),
                [
                    {
                        **base,
                        "decision_no": "宝税罚[2026]1号",
                        "last_sync_id": 1,
                        "vanished_on": day,
                    },
                    {
                        **base,
                        "decision_no": "宝税罚〔2026〕1号",
                        "last_sync_id": 2,
                        "vanished_on": None,
                    },
                    {
                        **base,
                        "decision_no": "宝税罚〔2026〕2号",
                        "last_sync_id": 2,
                        "vanished_on": None,
                    },
                ],
            )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, decision_no, decision_key FROM records ORDER BY id")
            ).all()
        assert [(no, key) for _, no, key in rows] == [
            ("宝税罚[2026]1号", f"宝税罚〔2026〕1号#{rows[0][0]}"),
            ("宝税罚〔2026〕1号", "宝税罚〔2026〕1号"),
            ("宝税罚〔2026〕2号", "宝税罚〔2026〕2号"),
        ]
    finally:
        engine.dispose()
