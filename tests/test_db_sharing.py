"""Writers share the database politely (issue 15, item 6): a sync started while another
job keeps writing waits for it instead of failing with `database is locked`, says which
job it waits for, and a sync that gives up leaves no `sync_runs` row at `running`."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from pipeline.db.engine import normalise_url
from pipeline.db.models import JobRun, Record, SyncRun, table_of
from tests.helpers import CliRunner, penalty, write_rows


def _runs(db_url: str) -> list[SyncRun]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(SyncRun).order_by(SyncRun.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _job_running(db_url: str, job: str) -> None:
    """A scheduled job's row as the runner writes it while the job runs."""
    engine = create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        conn.execute(
            insert(table_of(JobRun)),
            {
                "run_id": "busy-test",
                "job": job,
                "started_at": dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC),
                "outcome": "running",
            },
        )
    engine.dispose()


@contextmanager
def busy_writer(db_url: str, seconds: float, hold: float, pause: float) -> Iterator[None]:
    """Another process's job writing for `seconds`: transactions of `hold` s, `pause` apart
    (an evaluation commits page by page; `hold` = `seconds` is one long transaction)."""
    started = threading.Event()

    def work() -> None:
        engine = create_engine(
            normalise_url(db_url),
            poolclass=NullPool,
            connect_args={"timeout": 60} if db_url.startswith("sqlite") else {},
        )
        conn = engine.raw_connection()
        sqlite = db_url.startswith("sqlite")
        if sqlite:
            conn.driver_connection.isolation_level = None  # type: ignore[union-attr]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cursor = conn.cursor()
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute("UPDATE records SET evaluated_on = NULL")
            started.set()
            time.sleep(hold)
            conn.commit()
            time.sleep(pause)
        conn.close()
        engine.dispose()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield
    finally:
        thread.join()


def test_a_sync_waits_for_a_job_that_keeps_writing(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i) for i in range(1, 30)]
    assert cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows))).code == 0
    _job_running(db_url, "evaluate")
    changed = [penalty(i, CF_NR_FK="0.3") for i in range(1, 30)]
    with busy_writer(db_url, seconds=2.0, hold=0.04, pause=0.005):
        result = cli("sync", "--file", str(write_rows(tmp_path / "b.csv", changed)), "--json")
    assert result.code == 0, result.err
    assert result.json()["updated"] == 29
    assert [r.status for r in _runs(db_url)] == ["applied", "applied"]
    with busy_writer(db_url, seconds=2.0, hold=0.04, pause=0.005):
        evaluated = cli("eligibility", "--json")  # reads every record, then writes
    assert evaluated.code == 0, evaluated.err
    assert len(evaluated.json_lines()) == 29


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_sync_that_cannot_get_the_database_says_which_job_holds_it(
    cli: CliRunner, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL locks rows, not the database: this is SQLite's case only."""
    _job_running(db_url, "evaluate")
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE__BUSY_TIMEOUT", "1")
    path = write_rows(tmp_path / "a.csv", [penalty(1)])
    with busy_writer(db_url, seconds=3.0, hold=3.0, pause=0):
        result = cli("sync", "--file", str(path), "--json")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "the scheduled job 'evaluate'" in result.err  # the wait, then the error
    assert "stayed locked" in result.err and "database.busy_timeout" in result.err
    assert all(r.status != "running" for r in _runs(db_url))
    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        assert conn.execute(select(table_of(Record).c.id)).all() == []
    engine.dispose()
