"""How the dispatcher's SQLite connection is set up while it dispatches.

Durability is the engine's for every connection (`pipeline.db.engine`): WAL with
``synchronous=NORMAL``. A commit is in the WAL file when it returns, so a killed
dispatcher (SIGKILL, OOM, a redeploy) loses nothing it committed: the guarantees of
`pipeline.delivery.dispatcher` hold. A power cut or an OS crash may lose the last commits
(never corrupt the file): then a message marked ``sending`` or ``sent`` just before may
come back as ``claimed`` and, past its lease, go out again. ``synchronous=FULL`` would
close that window with an fsync per commit — 3.3 ms on this project's machine, more than
the whole message costs the bare SMTP loop — so the choice stays NORMAL, as for every
other writer, and the window is the one every job shares; a deployment that must not
resend after a power cut runs on PostgreSQL (every commit flushed, the dispatcher adds
no setting of its own).

On PostgreSQL the dispatcher's connection runs in autocommit (each of its writes is one
statement or takes a transaction of its own; one round trip where BEGIN, the statement
and COMMIT were three); every commit is flushed as the server is configured.

What this module changes on SQLite, on the dispatcher's connection only and only while it
runs:

- ``secure_delete=FAST``: every state change rewrites the outbox row whole, ~60 kB with
  the DOCX in its payload, and SQLite as Debian builds it (SECURE_DELETE) zeroes the freed
  copy page by page: twice the bytes written per outcome. The freed copy holds the payload
  the live row still holds, so zeroing it protects nothing; FAST still clears what it can
  without extra writes.
- ``cache_size`` of `CACHE_KIB`: a batch's rows (~60 kB each) are read by the claim and
  rewritten by the outcome a few seconds later; in SQLite's default 2 MB cache they were
  read from the file again.
- checkpoints in a thread of their own (`Checkpointer`): with NORMAL, the fsyncs happen
  when the WAL is copied back into the database, which SQLite does inside the commit that
  takes the WAL past 1,000 pages — every ~25 messages here, two fsyncs and ~4 MB written
  while the next message waited. The connection's own checkpoint threshold is raised (a
  safety net, should the thread fall behind) and a second connection runs a PASSIVE
  checkpoint — it waits for no reader or writer, and none waits for it — every
  `EVERY` steps. What is synced, and when a commit is durable, does not change.

The connection goes back to the pool as it came.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from pipeline.db.sandbox import shares_one_connection
from pipeline.logs import get_logger

log = get_logger("dispatch")

SECURE_DELETE = {0: "OFF", 1: "ON", 2: "FAST"}
"""What ``PRAGMA secure_delete`` answers → what it takes back (a plain 2 would mean ON)."""
CACHE_KIB = 32_768
"""The dispatcher connection's page cache while it runs (32 MiB, filled only as used)."""
SAFETY_PAGES = 20_000
"""The dispatcher's own checkpoint threshold while the thread checkpoints (~80 MB)."""
EVERY = 16
"""Steps between two checkpoints of the thread (~2.5 MB of WAL at ~150 kB a message)."""


class Checkpointer:
    """PASSIVE checkpoints on a connection of their own, run when `poke` was called
    `EVERY` times; `close` ends the thread (a last checkpoint first)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pokes = 0
        self.wake = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self._run, name="dispatch-checkpoint", daemon=True)
        self.thread.start()

    def poke(self) -> None:
        self.pokes += 1
        if self.pokes % EVERY == 0:
            self.wake.set()

    def close(self) -> None:
        self.done = True
        self.wake.set()
        self.thread.join()

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                while True:
                    self.wake.wait()
                    self.wake.clear()
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
                    conn.rollback()  # ends SQLAlchemy's transaction (SQLite opened none)
                    if self.done:
                        return
        except Exception as exc:  # an optimisation only: the connection's own threshold holds
            log.warning("dispatch.checkpoint_failed", error=f"{type(exc).__name__}: {exc}")


class Tuning:
    """What the dispatcher calls after each step (`after_step`): nothing on PostgreSQL."""

    def __init__(self, checkpointer: Checkpointer | None = None) -> None:
        self.checkpointer = checkpointer

    def after_step(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.poke()


@contextmanager
def dispatching(conn: Connection, engine: Engine) -> Iterator[Tuning]:
    """The dispatcher's connection set up as the module docstring says, while it runs."""
    if conn.dialect.name == "postgresql":
        # Every write of the dispatcher's on this connection is one statement (a claim, a
        # step: `pipeline.delivery.steps`) or takes a transaction of its own, so autocommit
        # spares a BEGIN and a COMMIT round trip each; the pool resets it on return. Not in
        # a what-if: its connection is borrowed inside one transaction rolled back at the
        # end (`pipeline.db.sandbox`), and must stay so.
        if not shares_one_connection(engine):
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield Tuning()
        return
    if conn.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        yield Tuning()
        return
    before = _pragmas(conn, "secure_delete", "wal_autocheckpoint", "cache_size")
    _set(conn, secure_delete="FAST", wal_autocheckpoint=SAFETY_PAGES, cache_size=-CACHE_KIB)
    checkpointer = Checkpointer(engine)
    try:
        yield Tuning(checkpointer)
    finally:
        checkpointer.close()
        if conn.in_transaction():
            conn.rollback()
        _set(
            conn,
            secure_delete=SECURE_DELETE[int(before["secure_delete"])],
            wal_autocheckpoint=before["wal_autocheckpoint"],
            cache_size=before["cache_size"],
        )


def _pragmas(conn: Connection, *names: str) -> dict[str, Any]:
    values = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one() for name in names}
    conn.commit()
    return values


def _set(conn: Connection, **values: Any) -> None:
    for name, value in values.items():
        conn.exec_driver_sql(f"PRAGMA {name} = {value}").close()
    conn.commit()
