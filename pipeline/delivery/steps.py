"""The dispatcher's per-message transaction, in as few statements as the database allows.

Right before a message is sent, one transaction writes what happened to the messages
before it — each outcome (its outbox row and delivery attempt) and, for a delivered
notice, the ledger's 已告知 (progress 0 → 1 and its audit events, as
`pipeline.ledger.state.record_told` writes them) — and marks this message ``sending``
with its delivery attempt (`pipeline.delivery.dispatcher`). A commit per message is the
price of "a kill leaves at most one `unknown`"; what it costs beyond the commit is kept
small here:

- every statement is SQLAlchemy Core, compiled once per database and run on the
  connection's DB-API cursor with the bind conversions SQLAlchemy itself would apply
  (`Prepared`): building and executing a Core statement through SQLAlchemy cost 40–180 µs
  each, more than SQLite's own work for it;
- PostgreSQL: the whole step is one statement (data-modifying CTEs, each on other rows),
  atomic on its own: on the dispatcher's connection, in autocommit, one round trip in all
  (no BEGIN, no COMMIT); the mark's delivery attempt is inserted only when the mark
  changed the row, as `mark_sending` does;
- SQLite (in process: a statement is a function call) runs them one after the other.

The statements are those of `pipeline.notices.outbox` (`mark_sending`, `finish_many`) and
the ledger write of `record_told`; tests/test_dispatcher.py holds the rows equal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect, bindparam, insert, literal, select, update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from pipeline.db.models import LedgerEvent, Record, table_of
from pipeline.ledger.state import _text as ledger_text
from pipeline.notices.outbox import (
    DONE,
    Outcome,
    attempts,
    finish_statements,
    mark_statement,
    outbox,
    start_attempt_statement,
)

records = table_of(Record)
events = table_of(LedgerEvent)
TOLD_FIELDS = ("progress", "notified_at", "notified_channel")
"""What telling a company changes on its record (`record_told`)."""


@dataclass(frozen=True)
class Told:
    """A delivered notice that tells its record (progress 0 → 1)."""

    record: dict[str, Any]
    """The record as the dispatcher last read it."""
    values: dict[str, Any]
    """progress, notified_at, notified_channel."""
    key: str
    """The outbox key, named in the audit events."""

    def changed(self) -> list[str]:
        return [name for name, new in self.values.items() if self.record[name] != new]


class Prepared:
    """A Core statement compiled once for one database, run on the DB-API cursor.

    Each parameter is the value given, or the statement's own fixed value (a required one
    missing is refused), through its bind's dialect type processor — the UTC datetimes,
    JSON — exactly as SQLAlchemy would convert it (`construct_params` and the compiled
    binds: a test holds the rows equal).
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        fixed = compiled.params
        names = compiled.positiontup if compiled.positiontup is not None else list(fixed)
        self.positional = compiled.positiontup is not None
        self.binds: list[tuple[str, bool, Any, Callable[[Any], Any] | None]] = []
        """(name, required, fixed value, processor) in the statement's parameter order."""
        for name in names:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append((name, bool(bind.required), fixed.get(name), processor))

    def parameters(self, given: dict[str, Any]) -> Any:
        values = []
        for name, required, fixed, processor in self.binds:
            if name in given:
                value = given[name]
            elif required:
                raise KeyError(f"no value for the required parameter {name!r}")
            else:
                value = fixed
            values.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(values)
        return {name: value for (name, *_), value in zip(self.binds, values, strict=True)}

    def execute(self, cursor: Any, given: dict[str, Any]) -> Any:
        cursor.execute(self.sql, self.parameters(given))
        return cursor

    def executemany(self, cursor: Any, given: list[dict[str, Any]]) -> None:
        cursor.executemany(self.sql, [self.parameters(p) for p in given])


def _told_record() -> Any:
    r = records.c
    return (
        update(records)
        .where(r.id == bindparam("t_id"), r.progress == 0)
        .values(
            progress=bindparam("t_progress"),
            notified_at=bindparam("t_at", type_=r.notified_at.type),
            notified_channel=bindparam("t_channel"),
            ledger_updated_at=bindparam("t_at", type_=r.ledger_updated_at.type),
        )
    )


def _told_events(count: int) -> Any:
    """The audit events of one told record: `count` rows, one per changed field."""
    e = events.c
    return insert(events).values(
        [
            {
                "record_id": bindparam("t_id", type_=e.record_id.type),
                "field": bindparam(f"e{i}_field", type_=e.field.type),
                "old_value": bindparam(f"e{i}_old", type_=e.old_value.type),
                "new_value": bindparam(f"e{i}_new", type_=e.new_value.type),
                "at": bindparam("t_at", type_=e.at.type),
                "source": literal("notice", e.source.type),
                "actor": bindparam("t_actor", type_=e.actor.type),
                "note": bindparam("t_note", type_=e.note.type),
            }
            for i in range(count)
        ]
    )


def _outcome_params(o: Outcome) -> dict[str, Any]:
    return {
        "o_id": o.row["id"],
        "o_worker": o.row["claimed_by"],
        "o_now": o.now,
        "o_state": o.state,
        "o_pid": o.provider_id,
        "o_error": o.error,
        "o_next": o.next_at,
        "o_aid": o.row["attempt_id"],
        "o_detail": o.detail,
    }


def _told_params(told: Told, actor: str) -> dict[str, Any]:
    params = {
        "t_id": told.record["id"],
        "t_progress": told.values["progress"],
        "t_at": told.values["notified_at"],
        "t_channel": told.values["notified_channel"],
        "t_actor": actor,
        "t_note": f"notice {told.key} delivered",
    }
    for i, name in enumerate(told.changed()):
        params[f"e{i}_field"] = name
        params[f"e{i}_old"] = ledger_text(told.record[name])
        params[f"e{i}_new"] = ledger_text(told.values[name])
    return params


def _mark_params(row: dict[str, Any], now: dt.datetime, lease: dt.timedelta) -> dict[str, Any]:
    return {"m_id": row["id"], "m_worker": row["claimed_by"], "m_now": now, "m_lease": now + lease}


class StepWriter:
    """Writes the dispatcher's steps on one connection (see the module docstring)."""

    def __init__(self, conn: Connection, actor: str) -> None:
        self.conn = conn
        self.actor = actor
        self.dialect = conn.dialect
        self.fused = conn.dialect.name == "postgresql"
        self._cache: dict[tuple[Any, ...], Prepared] = {}

    def _prepared(self, key: tuple[Any, ...], build: Callable[[], ClauseElement]) -> Prepared:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = Prepared(build(), self.dialect)
        return found

    def _cursor(self) -> Any:
        return self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def step(
        self,
        done: list[tuple[Outcome, Told | None]],
        mark: tuple[dict[str, Any], dt.datetime, dt.timedelta] | None,
    ) -> int | None:
        """Write the outcomes `done` (each with its ledger change) and, with `mark`, mark
        that row sending: its delivery attempt's id, or None when it is no longer this
        worker's claim (or there was nothing to mark). The caller holds the transaction —
        on PostgreSQL in autocommit (the dispatcher's connection, `pipeline.delivery.tuning`)
        the one statement is its own, and several get one here."""
        cursor = self._cursor()
        try:
            if self.fused and len(done) <= 1:
                return self._fused(cursor, done[0] if done else None, mark)
            with self._atomic():
                for outcome, told in done:
                    self._outcome(cursor, outcome, told)
                return self._mark(cursor, mark) if mark is not None else None
        finally:
            cursor.close()

    def _atomic(self) -> AbstractContextManager[Any]:
        driver = self.conn.connection.driver_connection
        if self.fused and getattr(driver, "autocommit", False):
            return driver.transaction()  # type: ignore[no-any-return, union-attr]
        return nullcontext()

    # ------------------------------------------------------------------ one statement each

    def _outcome(self, cursor: Any, outcome: Outcome, told: Told | None) -> None:
        kind = "done" if outcome.state in DONE else "other"
        params = _outcome_params(outcome)
        self._prepared(("finish", kind), lambda: finish_statements("o_")[kind]).execute(
            cursor, params
        )
        if outcome.row["attempt_id"] is not None:
            self._prepared(
                ("finish", "attempt"), lambda: finish_statements("o_")["attempt"]
            ).execute(cursor, params)
        if told is not None:
            params = _told_params(told, self.actor)
            self._prepared(("told",), _told_record).execute(cursor, params)
            count = len(told.changed())
            if count:
                self._prepared(("events", count), lambda: _told_events(count)).execute(
                    cursor, params
                )

    def _mark(
        self, cursor: Any, mark: tuple[dict[str, Any], dt.datetime, dt.timedelta]
    ) -> int | None:
        params = _mark_params(*mark)
        marked = self._prepared(("mark",), lambda: mark_statement("m_")).execute(cursor, params)
        if marked.rowcount != 1:
            return None
        started = self._prepared(
            ("start",), lambda: start_attempt_statement("m_").returning(attempts.c.id)
        ).execute(cursor, params)
        return int(started.fetchone()[0])

    # ------------------------------------------------------------------ PostgreSQL: one

    def _fused(
        self,
        cursor: Any,
        done: tuple[Outcome, Told | None] | None,
        mark: tuple[dict[str, Any], dt.datetime, dt.timedelta] | None,
    ) -> int | None:
        params: dict[str, Any] = {}
        kind = None
        tried = False
        count = -1
        if done is not None:
            outcome, told = done
            kind = "done" if outcome.state in DONE else "other"
            tried = outcome.row["attempt_id"] is not None
            params |= _outcome_params(outcome)
            if told is not None:
                params |= _told_params(told, self.actor)
                count = len(told.changed())
        if mark is not None:
            params |= _mark_params(*mark)
        key = ("fused", kind, tried, count, mark is not None)
        prepared = self._prepared(key, lambda: _fused(kind, tried, count, mark is not None))
        result = prepared.execute(cursor, params)
        if mark is None:
            return None
        found = result.fetchone()
        return None if found is None else int(found[0])


def _fused(kind: str | None, tried: bool, count: int, mark: bool) -> ClauseElement:
    """One PostgreSQL statement: the outcome, its attempt, the ledger change, the mark."""
    ctes = []
    if kind is not None:
        statements = finish_statements("o_")
        ctes.append(statements[kind].cte("outcome"))
        if tried:
            ctes.append(statements["attempt"].cte("outcome_attempt"))
    if count >= 0:
        ctes.append(_told_record().cte("told"))
        if count:
            ctes.append(_told_events(count).cte("told_events"))
    if not mark:
        return select(literal(1)).add_cte(*ctes)
    marked = mark_statement("m_").returning(outbox.c.id).cte("marked")
    return (
        insert(attempts)
        .from_select(
            ["outbox_id", "started_at"],
            select(marked.c.id, bindparam("m_now", type_=attempts.c.started_at.type)),
        )
        .add_cte(marked, *ctes)
        .returning(attempts.c.id)
    )
