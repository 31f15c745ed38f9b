"""The payloads of claimed rows, read ahead of the dispatcher on a connection of their own.

A payload is ~60 kB with its DOCX. The claim read fifty of them with the rows, and every
message of the batch waited for that read (and on PostgreSQL for the transfer and the
JSON decoding). The claim now takes the rows without them (`claim(payload=False)`) and
hands their ids to a `PayloadReader`: a thread that reads them a few at a time while the
dispatcher sends, so the dispatcher finds each one read when it gets to its row.

Only reads: a payload never changes after planning, and a reader sees committed rows (on
SQLite in WAL mode it does not block the dispatcher's writes, nor they it). A read that
fails is raised to the dispatcher when it asks for that row.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, select

from pipeline.db.sandbox import shares_one_connection
from pipeline.notices.outbox import outbox

CHUNK = 8
"""Payloads per SELECT (~0.5 MB)."""


class PayloadReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.wanted: deque[int] = deque()
        self.ready: dict[int, dict[str, Any]] = {}
        self.missing: set[int] = set()
        self.failed: BaseException | None = None
        self.closed = False
        self.lock = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="dispatch-read", daemon=True)
        self.thread.start()

    def want(self, ids: Iterable[int]) -> None:
        """Read these rows' payloads, in this order."""
        with self.lock:
            self.wanted.extend(ids)
            self.lock.notify_all()

    def get(self, row_id: int) -> dict[str, Any]:
        """The payload of a row asked for (`want`), waiting for it if need be."""
        with self.lock:
            if row_id not in self.ready and row_id not in self.wanted:
                self.wanted.appendleft(row_id)  # not asked for: read it next
                self.lock.notify_all()
            while row_id not in self.ready:
                if self.failed is not None:
                    raise self.failed
                if row_id in self.missing:
                    raise LookupError(f"outbox row {row_id} is gone")
                self.lock.wait()
            return self.ready.pop(row_id)

    def forget(self, ids: Iterable[int]) -> None:
        """Rows the dispatcher is done with: drop what was read or is still to read."""
        gone = set(ids)
        with self.lock:
            for row_id in gone:
                self.ready.pop(row_id, None)
            self.missing -= gone
            self.wanted = deque(i for i in self.wanted if i not in gone)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        self.thread.join()

    def _next(self) -> list[int] | None:
        with self.lock:
            while not self.wanted and not self.closed:
                self.lock.wait()
            if self.closed:
                return None
            return [self.wanted.popleft() for _ in range(min(CHUNK, len(self.wanted)))]

    def _run(self) -> None:
        c = outbox.c
        try:
            with self.engine.connect() as conn:
                while (ids := self._next()) is not None:
                    query = select(c.id, c.payload).where(c.id.in_(ids))
                    found = {int(i): payload for i, payload in conn.execute(query)}
                    conn.rollback()  # no snapshot held between reads
                    with self.lock:
                        self.ready.update(found)
                        self.missing.update(i for i in ids if i not in found)
                        self.lock.notify_all()
        except BaseException as exc:
            with self.lock:
                self.failed = exc
                self.lock.notify_all()


class InlinePayloads:
    """The same reads, one row at a time on the dispatcher's own connection: for an engine
    that has only that one connection (a PostgreSQL what-if, `pipeline.db.sandbox`), which a
    second thread must not use."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def want(self, ids: Iterable[int]) -> None:
        """Nothing read ahead: `get` reads when asked."""

    def get(self, row_id: int) -> dict[str, Any]:
        c = outbox.c
        query = select(c.payload).where(c.id == row_id)
        if self.conn.in_transaction():
            payload = self.conn.execute(query).scalar_one_or_none()
        else:
            with self.conn.begin():
                payload = self.conn.execute(query).scalar_one_or_none()
        if payload is None:
            raise LookupError(f"outbox row {row_id} is gone")
        return dict(payload)

    def forget(self, ids: Iterable[int]) -> None:
        """Nothing kept."""

    def close(self) -> None:
        """No thread."""


def payload_reader(engine: Engine, conn: Connection) -> PayloadReader | InlinePayloads:
    """A reader thread with a connection of its own, unless the engine has only one."""
    if shares_one_connection(engine):
        return InlinePayloads(conn)
    return PayloadReader(engine)
