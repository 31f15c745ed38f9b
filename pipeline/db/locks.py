"""Writers that share one SQLite database politely.

SQLite has one writer at a time. A transaction that reads and then writes (a sync, an
evaluation) and starts as a reader cannot wait for the lock when another writer committed
meanwhile: it fails at once with ``database is locked``. `write_lock` takes the write lock
when such a transaction starts (``BEGIN IMMEDIATE``), waiting up to the busy timeout
(`database.busy_timeout`) for the job that holds it, and says in the log which job that
is. Past the timeout it raises `DatabaseFailure` naming the job: nothing was changed.
PostgreSQL locks rows, not the database: nothing to do there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError

from pipeline.db.models import JobRun, table_of
from pipeline.errors import DatabaseFailure
from pipeline.logs import get_logger

log = get_logger("db")
job_runs = table_of(JobRun)
_PROBE_MS = 200
"""How long the first try waits before the log says who holds the lock."""


def write_lock(conn: Connection, work: str) -> None:
    """Take SQLite's write lock for the transaction `conn` is in (see the module docstring).

    `work` names what waits, for the log and the error ("sync", "evaluate").
    """
    if conn.dialect.name != "sqlite":
        return
    driver: Any = conn.connection.driver_connection
    if driver.in_transaction:
        return  # something already began it: too late to take the lock first
    timeout_ms = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
    try:
        if _begin_immediate(conn, min(_PROBE_MS, timeout_ms)):
            return
        holder = _writer(conn)
        log.warning(
            "db.waiting",
            message=f"{work}: the database is being written by {holder}; "
            f"waiting up to {timeout_ms / 1000:.0f} s for it to finish",
        )
        if not _begin_immediate(conn, timeout_ms):
            raise DatabaseFailure(
                f"{work}: the database stayed locked by {holder} for "
                f"{timeout_ms / 1000:.0f} s (database.busy_timeout); nothing was changed, "
                "run it again when that job has finished"
            )
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {timeout_ms}")


def _begin_immediate(conn: Connection, timeout_ms: int) -> bool:
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {timeout_ms}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        if "locked" in str(exc.orig) or "busy" in str(exc.orig):
            return False
        raise
    return True


def _writer(conn: Connection) -> str:
    """Which job holds the database, as far as job_runs tells (a read: never waits)."""
    c = job_runs.c
    row = conn.execute(
        select(c.job, c.started_at, c.host)
        .where(c.outcome == "running")
        .order_by(c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return "another command (no scheduled job is running)"
    return f"the scheduled job {row.job!r} (running since {row.started_at:%Y-%m-%d %H:%M} UTC)"
