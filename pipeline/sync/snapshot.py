"""Load a snapshot into the ledger: validate, stage, diff in SQL, guard, apply.

::

    rows --validate--> staging (temp table) --link to records--> counts --guard--> apply

A row is validated only when it may have changed: each raw row's fingerprint
(`RawDigest`: its cells as read, under the headers, field_map, departments,
jurisdiction and validating code) is looked up among those of the current records
(`records.raw_hash`); a row found there is the record it was loaded into, unchanged,
and only (record, row) is kept, in memory (`_Known`): the records none of the snapshot's
rows was found for go to a temp table (`sync_unmatched`: what may vanish, a few). New,
changed, vanished and previously rejected rows, and records with a warning (so `warnings`
stays the same from one identical sync to the next), are validated in full as before. A
change of configuration or code changes every fingerprint, so the next sync validates
all. A first load (no record of the kind) inserts the rows straight into `records`.

One database transaction per sync: either the whole snapshot is applied or nothing
is. The diff is set-based (a handful of statements whatever the size); only changed
records are touched row by row, to keep their old values in the history. Re-running
the same snapshot changes nothing. The guard refuses an empty snapshot, or one that
would vanish more than `sync.max_vanish_share` of the current records, unless forced.
"""

from __future__ import annotations

import datetime as dt
import gc
import operator
import sqlite3
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from pipeline.config import Config
from pipeline.db.locks import write_lock
from pipeline.db.models import (
    SNAPSHOT_FIELDS,
    QuarantinedRow,
    Record,
    RecordChange,
    SyncRun,
    table_of,
)
from pipeline.db.types import scanned
from pipeline.domain.routing import Router
from pipeline.errors import DatabaseFailure, InputError
from pipeline.logs import get_logger
from pipeline.sync.columns import ColumnPlan, Columns, all_none
from pipeline.sync.normalize import DateOrder
from pipeline.sync.rows import Issue, Kind, RawDigest, RowValidator, raw_fingerprint
from pipeline.sync.sources.base import RawRow, RowBatch, Snapshot
from pipeline.sync.sources.fields import build_mapping

log = get_logger("sync")
# Negative: KiB. Counted in the process's memory (kept well under the 500 MB target).
_SQLITE_CACHE_KIB = {"main": -96 * 1024, "temp": -32 * 1024}
records = table_of(Record)
changes = table_of(RecordChange)
quarantine = table_of(QuarantinedRow)
Progress = Callable[[int], None]
_NEW_VALUES = ("decision_no", *SNAPSHOT_FIELDS, "content_hash", "raw_hash")
"""What an update writes from the staged row (`decision_no`: the number as published, which
a re-export may write otherwise under the same key; not in the content hash)."""
_HISTORY_FIELDS = ("decision_no", *SNAPSHOT_FIELDS)
"""What a record's history keeps the old values of."""
_VALUES = attrgetter("values")
_PROBLEM = attrgetter("problem")


@dataclass
class SyncResult:
    sync_id: int | None = None
    rows_read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    vanished: int = 0
    out_of_scope: int = 0
    quarantined: int = 0
    warnings: int = 0
    refused: bool = False
    reason: str | None = None
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    warning_rows: list[dict[str, Any]] = field(default_factory=list)
    invalid_kept: int = 0
    """Records kept as they were because their row was quarantined (not vanished)."""
    out_of_scope_reasons: dict[str, int] = field(default_factory=dict)
    """`out_of_scope` by reason (`pipeline.domain.routing.OUT_OF_SCOPE`)."""
    identity_codes: dict[str, int] = field(default_factory=dict)
    """Rows whose USCC column held another code, by kind (`pipeline.domain.uscc.CODE_KINDS`)."""

    def as_json(self) -> dict[str, Any]:
        keys = (
            "rows_read",
            "added",
            "updated",
            "unchanged",
            "vanished",
            "out_of_scope",
            "quarantined",
            "warnings",
            "refused",
            "reason",
            "quarantine",
        )
        out = {k: getattr(self, k) for k in keys}
        out["warning_rows"] = self.warning_rows
        out["sync_id"] = self.sync_id
        out["invalid_kept"] = self.invalid_kept
        out["out_of_scope_reasons"] = self.out_of_scope_reasons
        out["identity_codes"] = self.identity_codes
        return out


@dataclass(frozen=True)
class SyncRequest:
    snapshot: Snapshot
    kind: Kind
    source: str
    """Records vanish only from the source that loaded them."""
    now: dt.datetime
    force: bool = False
    field_map: dict[str, str] = field(default_factory=dict)
    date_order: DateOrder = "ymd"
    """How the source writes year-last dates (settings.yaml `sources[].date_order`)."""


def _staging_table() -> Table:
    """A temporary table: unlogged on PostgreSQL, outside the main file on SQLite."""
    cols = [Column(c.name, _plain(c.type)) for c in records.c if c.name in SNAPSHOT_FIELDS]
    return Table(
        "sync_staging",
        MetaData(),
        Column("row_no", Integer, primary_key=True),
        Column("authority", String(200)),
        Column("decision_no", String(200)),
        Column("decision_key", String(200)),
        *cols,
        Column("content_hash", String(32)),
        Column("raw_hash", String(32)),
        Column("record_id", Integer),
        prefixes=["TEMPORARY"],
    )


def _ids_table(name: str) -> Table:
    """A temp table of record ids."""
    return Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        prefixes=["TEMPORARY"],
    )


class _Known:
    """The rows known unchanged (their raw fingerprint is their record's): (record, row),
    in row order, as two arrays of integers (16 bytes a row, no table to write).

    After staging: `marks` (a byte per record id) answers "found by a known row?" for the
    sets the diff needs (`_Sync._unmatched`, `_Sync._kept`, `_Sync._resolve_duplicates`)
    with C loops; `drop` takes out a record whose known row was a later duplicate.
    """

    MAX_MARKED_ID = 64_000_000
    """Above this id, a set is cheaper than a byte per id."""

    def __init__(self) -> None:
        self.records = array("q")
        self.rows = array("q")
        self.dropped: set[int] = set()
        self._marks: bytearray | set[int] | None = None

    def __len__(self) -> int:
        return len(self.records) - len(self.dropped)

    def extend(self, record_ids: Iterable[int], row_nos: Iterable[int]) -> None:
        self.records.extend(record_ids)
        self.rows.extend(row_nos)

    def found(self, ids: Sequence[int]) -> list[bool]:
        """For each record id: whether a known row (not dropped) is its."""
        marks = self._marked()
        if isinstance(marks, set):
            hits = list(map(marks.__contains__, ids))
        else:
            size = len(marks)
            hits = [i < size and marks[i] == 1 for i in ids]
        if self.dropped:
            hits = [h and i not in self.dropped for h, i in zip(hits, ids, strict=True)]
        return hits

    def row_of(self, ids: set[int]) -> dict[int, int]:
        """The known row of each of these records that has one (not dropped)."""
        return {
            r: n
            for r, n in zip(self.records, self.rows, strict=True)
            if r in ids and r not in self.dropped
        }

    def drop(self, record_id: int) -> None:
        self.dropped.add(record_id)

    def _marked(self) -> bytearray | set[int]:
        if self._marks is None:
            top = max(self.records, default=0)
            if top > self.MAX_MARKED_ID:
                self._marks = set(self.records)
            else:
                marks = bytearray(top + 1)
                for record_id in self.records:
                    marks[record_id] = 1
                self._marks = marks
        return self._marks


def _invalid_table() -> Table:
    """Quarantined rows whose key could be read, and the record with that key (if any):
    such a record is kept as it was, flagged, instead of vanishing."""
    return Table(
        "sync_invalid",
        MetaData(),
        Column("row_no", Integer, primary_key=True, autoincrement=False),
        Column("authority", Text),
        Column("decision_key", Text),
        Column("record_id", Integer),
        prefixes=["TEMPORARY"],
    )


def _plain(type_: Any) -> Any:
    if isinstance(type_, JSON):
        return JSON(none_as_null=True)
    return {"DATE": Date(), "NUMERIC": Numeric(18, 6), "TEXT": Text()}.get(
        type(type_).__name__.upper(), type_
    )


_STAGED = tuple(c.name for c in _staging_table().c if c.name != "record_id")
"""The staging columns a row fills (`record_id` is linked later); but `row_no`, the
columns of `records` an added row takes from its row."""


def sync_snapshot(
    engine: Engine, config: Config, request: SyncRequest, progress: Progress | None = None
) -> SyncResult:
    """Validate, diff and apply one snapshot; see the module docstring."""
    mapping = build_mapping(
        request.snapshot.headers,
        "penalties" if request.kind == "penalty" else "severe-list",
        request.field_map,
    )
    missing = mapping.missing_required()
    if missing:
        raise InputError(
            f"{request.snapshot.name}: the header lacks required column(s) "
            f"{'; '.join(mapping.describe_missing())}; nothing was loaded"
        )
    repeated = mapping.describe_repeated()
    if repeated:
        raise InputError(f"{request.snapshot.name}: {'; '.join(repeated)}; nothing was loaded")
    router = Router(config.departments, config.settings.jurisdiction)
    validator = RowValidator(request.kind, mapping, router, request.date_order)
    digest = RawDigest(
        raw_fingerprint(
            request.kind,
            mapping,
            config.departments.model_dump_json(),
            config.settings.jurisdiction.model_dump_json(),
            request.date_order,
        )
    )
    result = SyncResult()
    try:
        with engine.begin() as conn:
            write_lock(conn, "sync")
            result.sync_id = _open_run(conn, request)
            _Sync(conn, config, request, result, progress).run(validator, digest)
    except DBAPIError as exc:
        failure = DatabaseFailure(
            f"{request.snapshot.name}: the database refused the sync, nothing was loaded: "
            f"{database_cause(exc)}"
        )
        _fail_run(engine, request, failure)
        raise failure from exc
    except BaseException as exc:
        _fail_run(engine, request, exc)
        raise
    return result


def database_cause(exc: DBAPIError) -> str:
    """The driver's own first line (e.g. "NumericValueOutOfRange: numeric field overflow"),
    without SQLAlchemy's statement and parameters (which hold the row's data)."""
    orig = exc.orig if exc.orig is not None else exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:500]


def _open_run(conn: Connection, request: SyncRequest) -> int:
    """The run's row, in the sync's own transaction: a sync that fails or is killed leaves
    no row `running` (a failure is recorded apart, by `_fail_run`)."""
    return int(
        conn.execute(
            insert(table_of(SyncRun)).returning(table_of(SyncRun).c.id),
            {
                "source": request.source,
                "kind": request.kind,
                "started_at": request.now,
                "on": request.now.date(),
                "status": "running",
            },
        ).scalar_one()
    )


def _fail_run(engine: Engine, request: SyncRequest, exc: BaseException) -> None:
    """Record a failed sync (its transaction was rolled back); never hides `exc`."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, DBAPIError):
        reason = database_cause(exc)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table_of(SyncRun)),
                {
                    "source": request.source,
                    "kind": request.kind,
                    "started_at": request.now,
                    "finished_at": request.now,
                    "on": request.now.date(),
                    "status": "failed",
                    "reason": reason,
                },
            )
    except Exception as error:  # the database may be what failed: the cause is raised anyway
        log.error("sync.failure_not_recorded", error=type(error).__name__, cause=reason)


class _Copies:
    """The one COPY open on a PostgreSQL connection (psycopg), kept open across batches:
    the server stores rows while the sync reads and validates the next ones, instead of
    each waiting for the other.

    Nothing else may run on the connection meanwhile (psycopg holds it for the COPY: a
    statement would wait for ever): `close` before any other statement; `abort` when the
    sync fails (the transaction is rolled back after).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sql: str | None = None
        self.copy: Any = None
        self.stack: ExitStack | None = None

    def get(self, sql: str) -> Any:
        """The open COPY for `sql` (another one is finished first)."""
        if self.sql != sql:
            self.close()
            stack = ExitStack()
            driver: Any = self.conn.connection.driver_connection
            cursor = stack.enter_context(closing(driver.cursor()))
            self.copy = stack.enter_context(cursor.copy(sql))
            self.stack, self.sql = stack, sql
        return self.copy

    def close(self) -> None:
        """Finish the open COPY, if any: the server's last errors surface here."""
        if self.stack is None:
            return
        stack, sql = self.stack, self.sql
        self.stack = self.copy = self.sql = None
        dbapi_error = self.conn.dialect.loaded_dbapi.Error
        try:
            stack.close()
        except dbapi_error as exc:  # as SQLAlchemy would raise it (`DBAPIError`, its cause)
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc

    def abort(self, error: BaseException) -> None:
        """End the open COPY without its rows, as the sync fails with `error`."""
        if self.stack is None:
            return
        stack = self.stack
        self.stack = self.copy = self.sql = None
        with suppress(Exception):  # `error` is what the sync reports
            stack.__exit__(type(error), error, error.__traceback__)


class _BulkWriter:
    """Bulk insert into one table: COPY on PostgreSQL (psycopg), the driver's executemany
    on SQLite; SQLAlchemy's executemany on anything else.

    Stores exactly what `conn.execute(table.insert(), rows)` would (the columns' own bind
    processors convert dates, decimals and JSON), without its per-row overhead. Rows are
    built from dicts (`rows_of_dicts`) or from whole columns (`rows_of_columns`, as
    `ColumnPlan` gives them: processed a column at a time, and a column that is None in
    every row left out of the statement: it is NULL anyway, and Python's sqlite3 pays
    for each None it binds). `constants` are columns with one value for every row.
    """

    def __init__(
        self,
        copies: _Copies,
        table: Table,
        names: Sequence[str],
        constants: dict[str, Any] | None = None,
    ) -> None:
        self.copies = copies
        self.conn = conn = copies.conn
        self.table = table
        constants = constants or {}
        self.names = (*names, *constants)
        self.row = itemgetter(*names)
        dialect = conn.dialect
        self.mode = "orm"
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.mode = "copy"
        elif dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            self.mode = "executemany"
        # the orm mode hands SQLAlchemy values as they are: it processes them itself
        self.processors: dict[str, Callable[[Any], Any]] = {}
        if self.mode != "orm":
            for name in self.names:
                column_type = table.c[name].type.dialect_impl(dialect)
                process = column_type.bind_processor(dialect)
                if process is not None:
                    self.processors[name] = process
        self.constants = {
            k: self.processors[k](v) if k in self.processors else v for k, v in constants.items()
        }
        self._memos: dict[str, dict[Any, Any]] = {
            n: {} for n in self.processors if isinstance(table.c[n].type, Date)
        }
        """Processed once per distinct value (a date is its text whatever the row)."""
        self.optional = {
            n
            for n in names
            if table.c[n].default is None
            and table.c[n].server_default is None
            and (n not in self.processors or self.processors[n](None) is None)
        }
        """Columns a row may leave out when they are None (NULL either way)."""
        self.processed_row = [
            (i, self.processors[n]) for i, n in enumerate(names) if n in self.processors
        ]
        self._sql: dict[tuple[str, ...], str] = {}

    def sql(self, names: tuple[str, ...]) -> str:
        if names not in self._sql:
            preparer = self.conn.dialect.identifier_preparer
            quoted = ", ".join(preparer.quote(n) for n in names)
            target = preparer.format_table(self.table)
            if self.mode == "copy":
                self._sql[names] = f"COPY {target} ({quoted}) FROM STDIN"
            else:
                marks = ", ".join("?" * len(names))
                self._sql[names] = f"INSERT INTO {target} ({quoted}) VALUES ({marks})"
        return self._sql[names]

    def rows_of_dicts(self, batch: Sequence[dict[str, Any]]) -> list[Sequence[Any]]:
        """Rows of all `names`, for `write_rows`."""
        get, extra = self.row, tuple(self.constants.values())
        rows: list[Sequence[Any]] = []
        for values in batch:
            row = list(get(values))
            for i, process in self.processed_row:
                row[i] = process(row[i])
            rows.append((*row, *extra))
        return rows

    def rows_of_columns(
        self, columns: Mapping[str, Sequence[Any]]
    ) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """(the columns written, the rows) of these columns (all of equal length)."""
        names: list[str] = []
        parts: list[Any] = []
        for name in self.names:
            if name in self.constants:
                names.append(name)
                parts.append(repeat(self.constants[name]))
                continue
            column = columns[name]
            if self.mode == "executemany" and name in self.optional and all_none(column):
                continue  # (a COPY takes None at no cost, and stays open with its columns)
            process = self.processors.get(name)
            if process is not None:
                column = self._processed(name, process, column)
            names.append(name)
            parts.append(column)
        return tuple(names), list(zip(*parts, strict=False))  # the constants repeat

    def _processed(
        self, name: str, process: Callable[[Any], Any], column: Sequence[Any]
    ) -> Sequence[Any]:
        memo = self._memos.get(name)
        if memo is None:
            return list(map(process, column))
        try:
            return list(map(memo.__getitem__, column))
        except KeyError:  # values not seen yet (bounded, as the validation's memos)
            for value in set(column).difference(memo):
                if len(memo) >= 8192:
                    return list(map(process, column))
                memo[value] = process(value)
            return list(map(memo.__getitem__, column))

    def write(self, batch: list[dict[str, Any]]) -> None:
        self.write_rows(self.rows_of_dicts(batch))

    def write_rows(
        self, rows: Sequence[Sequence[Any]], names: tuple[str, ...] | None = None
    ) -> None:
        """Rows of these columns (all `names` by default), as `rows_of_dicts` or
        `rows_of_columns` make them."""
        if not rows:
            return
        names = names or self.names
        if self.mode == "orm":
            self.conn.execute(self.table.insert(), [dict(zip(names, r, strict=True)) for r in rows])
            return
        sql = self.sql(names)
        dbapi_error = self.conn.dialect.loaded_dbapi.Error
        if self.mode == "copy":
            try:
                write = self.copies.get(sql).write_row
                for row in rows:
                    write(row)
            except dbapi_error as exc:  # as SQLAlchemy would raise it (`DBAPIError`)
                self.copies.abort(exc)
                raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, rows)
        except dbapi_error as exc:  # as SQLAlchemy would raise it (`DBAPIError`, its cause)
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
        finally:
            cursor.close()


class _Sync:
    """One sync inside one transaction."""

    def __init__(
        self,
        conn: Connection,
        config: Config,
        request: SyncRequest,
        result: SyncResult,
        progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.request = request
        self.result = result
        self.progress = progress
        self.batch_size = config.settings.sync.batch_size
        self.max_share = config.settings.sync.max_vanish_share
        self.staging = _staging_table()
        self.known = _Known()
        self.unmatched = _ids_table("sync_unmatched")
        """Current records of this source no known row was found for (`_unmatched`)."""
        self.kept = _ids_table("sync_kept")
        """Records whose only row was quarantined: kept as they were (`_kept`)."""
        self.invalid = _invalid_table()
        self.gone = Table(
            "sync_gone", MetaData(), Column("id", Integer, primary_key=True), prefixes=["TEMPORARY"]
        )
        """The records that vanish (found by `_count`)."""
        self.copies = _Copies(conn)
        self.writer = _BulkWriter(self.copies, self.staging, _STAGED)
        self.ids_writers = {
            t.name: _BulkWriter(self.copies, t, ["id"]) for t in (self.unmatched, self.kept)
        }
        self.invalid_writer = _BulkWriter(
            self.copies, self.invalid, ["row_no", "authority", "decision_key"]
        )
        self.history_writer = _BulkWriter(
            self.copies, changes, ["record_id", "sync_id", "change", "old_values", "on"]
        )
        self.direct = False
        """A first load (no record of this kind yet): rows go straight into `records`."""
        self.today = request.now.date()
        self._validated = 0
        """Rows staged in full (in `staging`); the others are in `known`."""
        self._invalid = 0
        """Rows in `sync_invalid` (none: no record is kept for a quarantined row)."""
        self._survey: tuple[array[int], bool] | None = None
        """(this source's current records' ids, whether a record of the kind is flagged
        invalid-row), as `_unchanged_digests` found them before anything changed."""
        self._duplicates: list[tuple[int, str, str]] = []
        """(row, authority, decision key) of validated rows repeating a validated row's key."""
        self._seen: dict[int, int] = {}
        """hash((authority, decision key)) of each validated row staged → its row number."""

    # ------------------------------------------------------------------ stage
    def run(self, validator: RowValidator, digest: RawDigest) -> None:
        restore = self._bulk_settings()
        temporary = (self.staging, self.unmatched, self.kept, self.gone, self.invalid)
        for table in temporary:
            table.drop(self.conn, checkfirst=True)
            table.create(self.conn)
        try:
            self.direct = self._first_load()
            rebuild = _nothing
            if self.direct:
                self.writer = _BulkWriter(
                    self.copies, records, _STAGED[1:], self._added_constants()
                )
                rebuild = self._indexes_after_load()
            try:
                with _fewer_collections():
                    self._stage(validator, digest, self._unchanged_digests())
                self.copies.close()
            except BaseException as exc:
                self.copies.abort(exc)
                raise
            rebuild()
            if self.direct:
                self._resolve_duplicates()
                self._count_first_load()
            else:
                self._link()
                self._resolve_duplicates()
                self._count()
            self._guard()
            if not self.result.refused:
                self._apply()
            self._close_run()
            # Only on success: after a database error the transaction is aborted
            # (PostgreSQL refuses every statement, which would hide the cause); rolling
            # it back drops them, and the next sync drops any left on the connection.
            for table in reversed(temporary):
                table.drop(self.conn)
        finally:
            restore()

    def _bulk_settings(self) -> Callable[[], None]:
        """SQLite: a bigger page cache for this transaction (the default 2 MiB makes
        inserts into the records indexes and the staging table thrash at a million
        rows); restored afterwards, as the connection goes back to the pool."""
        if self.conn.dialect.name != "sqlite":
            return lambda: None
        execute = self.conn.exec_driver_sql
        main = execute("PRAGMA main.cache_size").scalar_one()
        temp = execute("PRAGMA temp.cache_size").scalar_one()
        execute(f"PRAGMA main.cache_size = {_SQLITE_CACHE_KIB['main']}")
        execute(f"PRAGMA temp.cache_size = {_SQLITE_CACHE_KIB['temp']}")

        def restore() -> None:
            execute(f"PRAGMA main.cache_size = {int(main)}")
            execute(f"PRAGMA temp.cache_size = {int(temp)}")

        return restore

    def _unchanged_digests(self) -> dict[str, int]:
        """Raw fingerprint (hex) → id of the current records a row with it leaves unchanged
        (`_read_records`)."""
        return self._read_records()

    def _read_records(self) -> dict[str, int]:
        """Raw fingerprint (hex) → id of the current records a row with it leaves unchanged.

        Not vanished (a row reappearing is a change) and without a USCC warning (the
        warning is reported again at each sync: such rows are validated again). A stored
        fingerprint that is not one of ours never equals a row's (`RawDigest.many`).

        The same pass over the records of the kind lists this source's current ones (what
        may vanish, and the guard's denominator: `_count`) and tells whether any carries
        the invalid-row flag (else `_flag_invalid_rows` has none to clear): the table is
        read once where it was read four times (`_survey`).
        """
        r = records.c
        usable = and_(r.vanished_on.is_(None), r.uscc_warning.is_(None))
        query = select(
            case((usable, r.raw_hash), else_=None),
            r.id,
            case((and_(r.source == self.request.source, r.vanished_on.is_(None)), 1), else_=0),
            case((r.invalid_row_id.is_not(None), 1), else_=0),
        ).where(scanned(r.kind) == self.request.kind)
        known: dict[str, int] = {}
        current = array("q")
        flagged = 0
        fingerprint, pair, record_id = itemgetter(0), itemgetter(0, 1), itemgetter(1)
        for rows in _plain_batches(self.conn, query):
            known.update(compress(map(pair, rows), map(fingerprint, rows)))
            current.extend(compress(map(record_id, rows), map(itemgetter(2), rows)))
            flagged += sum(map(itemgetter(3), rows))
        self._survey = (current, flagged > 0)
        return known

    def _first_load(self) -> bool:
        """No record of this kind at all (any source, vanished or not): every valid row is
        added, nothing links, changes or vanishes. The rows then go straight into
        `records`, in row order, instead of through the staging table."""
        r = records.c
        found = self.conn.execute(select(r.id).where(r.kind == self.request.kind).limit(1))
        return found.first() is None

    def _indexes_after_load(self) -> Callable[[], None]:
        """SQLite, a first load into an empty `records`: its secondary indexes are dropped
        for the load and made again after it (one sort each instead of a B-tree insert per
        row; some 15 % of the insert). In the sync's transaction: readers (WAL) still see
        the schema as it was, and a failed sync rolls the drop back. (PostgreSQL would
        lock the table against every reader for the load: not there.)"""
        empty = self.conn.execute(select(records.c.id).limit(1)).first() is None
        if self.conn.dialect.name != "sqlite" or not empty:
            return _nothing
        indexes = self.conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL"
        ).all()
        quote = self.conn.dialect.identifier_preparer.quote
        for name, _ in indexes:
            self.conn.exec_driver_sql(f"DROP INDEX {quote(name)}")

        def rebuild() -> None:
            for _, sql in indexes:
                self.conn.exec_driver_sql(sql)

        return rebuild

    def _stage(self, validator: RowValidator, digest: RawDigest, known: dict[str, int]) -> None:
        """Validate and stage every row, except rows `known` unchanged: only their record.

        Batch by batch: the rows' fingerprints at once (`RawDigest.many`), the known ones
        set aside, the others validated column by column (`ColumnPlan`, which defers the
        rows it cannot vouch for to `RowValidator.validate`).

        A known row is not even keyed: its record is its key. Two rows with one key are
        found here when both were validated (`_seen`), or by `_resolve_duplicates` when
        one is known (as they then share the record). A second row with the cells of a
        known one no longer finds them (`pop`): it is validated, as a duplicate.
        """
        plan = ColumnPlan(validator)
        issues: list[Issue] = []
        invalid: list[tuple[int, str, str]] = []
        result, progress = self.result, self.progress
        for batch in self.request.snapshot.row_batches(self.batch_size):
            before = result.rows_read
            result.rows_read += len(batch)
            if progress and result.rows_read // 10_000 > before // 10_000:
                progress(result.rows_read)
            rows, digests = _fingerprinted(digest, batch)
            if known:
                rows, digests = _set_known_aside(batch, rows, digests, known, self.known)
            if rows is None:
                rows = batch.rows()
            validated = plan.run(rows)
            valid = self._outcomes(validated, digests, issues, invalid)
            self._write_valid(validated, digests, valid)
            if len(invalid) >= self.batch_size:
                self._write_invalid(invalid)
            if issues:
                self._quarantine(issues)
                issues.clear()
        known.clear()  # memory, for the steps below
        self._write_invalid(invalid)

    def _outcomes(
        self,
        validated: Columns,
        digests: list[str],
        issues: list[Issue],
        invalid: list[tuple[int, str, str]],
    ) -> list[dict[str, Any]]:
        """Count and collect what the rows validated one by one (or set aside) gave; their
        valid rows' values, with their fingerprint."""
        result = self.result
        valid = []
        for position, outcome in validated.outcomes:
            issues.extend(outcome.issues)
            if outcome.identity is not None:
                _count(result.identity_codes, outcome.identity)
            values = outcome.values
            if values is None:
                result.out_of_scope += outcome.out_of_scope
                if outcome.scope_reason is not None:
                    _count(result.out_of_scope_reasons, outcome.scope_reason)
                if outcome.key is not None and outcome.rejected and not self.direct:
                    invalid.append((outcome.row_no, *outcome.key))
                continue
            values["raw_hash"] = digests[position]  # a valid row has no problem: set
            valid.append(values)
        return valid

    def _write_valid(
        self, validated: Columns, digests: list[str], valid: list[dict[str, Any]]
    ) -> None:
        """Stage (or, on a first load, insert) the valid rows of a batch in row order,
        but a row repeating the key of one before it (`_duplicates`)."""
        columns: dict[str, Sequence[Any]] = {}
        if validated.accepted:
            columns = dict(validated.values)
            columns["raw_hash"] = list(map(digests.__getitem__, validated.accepted))
        if valid:
            columns = _merged(columns, valid)
        if not columns:
            return
        names, rows = self.writer.rows_of_columns(columns)
        rows = self._unique(columns["row_no"], rows, names)
        self._validated += len(rows)
        self.writer.write_rows(rows, names)

    def _unique(
        self, row_nos: Sequence[int], rows: list[Sequence[Any]], names: tuple[str, ...]
    ) -> list[Sequence[Any]]:
        """The rows whose (authority, decision key) no row before them had (`_seen`)."""
        key_of = itemgetter(names.index("authority"), names.index("decision_key"))
        hashes = list(map(hash, map(key_of, rows)))
        seen = self._seen
        if seen.keys().isdisjoint(hashes) and len(set(hashes)) == len(hashes):
            seen.update(zip(hashes, row_nos, strict=True))
            return rows
        unique = []
        for row_no, row, key in zip(row_nos, rows, hashes, strict=True):
            if key in seen:
                self._duplicates.append((row_no, *key_of(row)))
                continue
            seen[key] = row_no
            unique.append(row)
        return unique

    def _write_invalid(self, rows: list[tuple[int, str, str]]) -> None:
        if rows:
            self._invalid += len(rows)
            self.invalid_writer.write_rows(rows)
            rows.clear()

    def _flush(self, issues: list[Issue]) -> None:
        if issues:
            self._quarantine(issues)
            issues.clear()

    def _quarantine(self, issues: list[Issue]) -> None:
        self.copies.close()  # a statement of its own
        rows = [
            {
                "sync_id": self.result.sync_id,
                "source": self.request.snapshot.name,
                "row_no": i.row,
                "field": i.field,
                "level": i.level,
                "reason": i.reason,
            }
            for i in issues
        ]
        self.conn.execute(insert(quarantine), rows)
        for issue in issues:
            target = self.result.quarantine if issue.level == "error" else self.result.warning_rows
            target.append(issue.as_json())
        self.result.quarantined += len({i.row for i in issues if i.level == "error"})
        self.result.warnings += sum(i.level == "warning" for i in issues)

    def _resolve_duplicates(self) -> None:
        """Quarantine every row but the first of each key (after `_link`).

        Validated rows repeating a validated row's key were set aside by `_stage`; a
        validated row and a known row with one key share a record: the later one goes.
        """
        if self.direct:  # nothing known, nothing staged: the first rows are in `_seen`
            self._flush(
                [
                    _duplicate(row_no, self._seen[hash((authority, key))], authority, key)
                    for row_no, authority, key in sorted(self._duplicates)
                ]
            )
            return
        s, r = self.staging.c, records.c
        pairs = self._staged_and_known()
        duplicates = self._duplicates + [
            (max(full, known), authority, decision_no)
            for full, known, authority, decision_no, _ in pairs
        ]
        if not duplicates:
            return
        if len(duplicates) > 8:  # else a scan per duplicate is cheaper than an index
            self.conn.exec_driver_sql(
                "CREATE INDEX ix_sync_staging_key ON sync_staging (authority, decision_key)"
            )
        by_key = {
            (authority, key): self.conn.execute(
                select(r.id).where(
                    r.kind == self.request.kind, r.authority == authority, r.decision_key == key
                )
            ).scalar()
            for _, authority, key in duplicates
        }
        known_rows = self.known.row_of({i for i in by_key.values() if i is not None})
        issues = []
        for row_no, authority, decision_no in sorted(duplicates):
            staged_first = self.conn.execute(
                select(func.min(s.row_no)).where(
                    s.authority == authority, s.decision_key == decision_no
                )
            ).scalar()
            record_id = by_key[(authority, decision_no)]
            known_first = None if record_id is None else known_rows.get(record_id)
            first = min(n for n in (staged_first, known_first) if n is not None)
            issues.append(_duplicate(row_no, first, authority, decision_no))
        for full, known, _, _, record_id in pairs:  # after the messages: they need the firsts
            if full > known:
                self.conn.execute(self.staging.delete().where(s.row_no == full))
                self._validated -= 1
            else:
                self.known.drop(record_id)
        self._flush(issues)

    def _staged_and_known(self) -> list[tuple[int, int, str, str, int]]:
        """(validated row, known row, authority, decision key, record) of each record both
        a validated row (linked: `_link`) and a known row are."""
        if not len(self.known):
            return []
        s = self.staging.c
        linked = select(s.row_no, s.record_id, s.authority, s.decision_key).where(
            s.record_id.is_not(None)
        )
        both: list[Any] = []
        for rows in _plain_batches(self.conn, linked):
            found = self.known.found([row[1] for row in rows])
            both += compress(rows, found)
        known_rows = self.known.row_of({row[1] for row in both})
        return [(full, known_rows[rid], a, k, rid) for full, rid, a, k in both]

    # ------------------------------------------------------------------- diff
    def _link(self) -> None:
        if self.conn.dialect.name == "postgresql":
            # Fresh statistics on records, or right after a big sync (before autovacuum
            # has seen it) PostgreSQL may plan the joins below as a nested loop over
            # the staging table per record: quadratic.
            self.conn.exec_driver_sql("ANALYZE records")
        for table in (self.staging, self.invalid):
            self._link_records(table)
        self.conn.exec_driver_sql("CREATE INDEX ix_sync_staging_record ON sync_staging (record_id)")
        self.conn.exec_driver_sql("CREATE INDEX ix_sync_invalid_record ON sync_invalid (record_id)")

    def _link_records(self, table: Table) -> None:
        """Set `record_id` of each row of `table` to the record with its key, if any."""
        s, r = table.c, records.c
        key = and_(
            r.kind == self.request.kind,
            r.authority == s.authority,
            r.decision_key == s.decision_key,
        )
        if _update_from(self.conn):
            # UPDATE … FROM: a join, and only rows with a record are written (none on a
            # first sync) instead of every staged row.
            self.conn.execute(update(table).values(record_id=r.id).where(key))
        else:
            match = select(r.id).where(key).scalar_subquery()
            self.conn.execute(update(table).values(record_id=match))

    def _changed(self) -> Any:
        s, r = self.staging.c, records.c
        return and_(
            r.id == s.record_id,
            or_(
                r.content_hash != s.content_hash,
                r.vanished_on.is_not(None),
                r.decision_no != s.decision_no,  # the same key, written another way
            ),
        )

    def _stale(self) -> Any:
        """Linked and unchanged, but the record's raw fingerprint is another (or none)."""
        s, r = self.staging.c, records.c
        return and_(
            r.id == s.record_id,
            r.content_hash == s.content_hash,
            r.decision_no == s.decision_no,
            r.vanished_on.is_(None),
            or_(r.raw_hash.is_(None), r.raw_hash != s.raw_hash),
        )

    def _kept_invalid(self) -> Any:
        """Records whose only row in the snapshot was quarantined: kept as they were."""
        r, kept = records.c, self.kept.c
        return and_(r.kind == self.request.kind, exists().where(kept.id == r.id))

    def _unmatched(self) -> None:
        """`sync_unmatched`: this source's current records no known row was found for
        (what may vanish; a few in a daily resync)."""
        if self._survey is None:  # `_unchanged_digests` was not asked (tests)
            self._read_records()
        assert self._survey is not None
        current = self._survey[0]
        found = self.known.found(current)
        self.ids_writers[self.unmatched.name].write_rows(
            [(i,) for i in compress(current, map(operator.not_, found))]
        )

    def _kept(self) -> int:
        """`sync_kept`: records linked from a quarantined row only (no valid row, no known
        row is theirs); how many."""
        if not self._invalid:
            return 0
        i, s = self.invalid.c, self.staging.c
        linked = (
            select(i.record_id)
            .distinct()
            .where(i.record_id.is_not(None), not_(exists().where(s.record_id == i.record_id)))
        )
        ids = list(self.conn.execute(linked).scalars())
        kept = [(r,) for r, found in zip(ids, self.known.found(ids), strict=True) if not found]
        self.ids_writers[self.kept.name].write_rows(kept)
        self.copies.close()
        return len(kept)

    def _count(self) -> None:
        s, u, i = self.staging.c, self.unmatched.c, self.invalid.c
        count = self._scalar
        staged = self._validated + len(self.known)
        self.result.added = count(select(func.count()).where(s.record_id.is_(None)))
        self.result.updated = count(
            select(func.count()).select_from(self.staging.join(records, self._changed()))
        )
        self.result.unchanged = staged - self.result.added - self.result.updated
        # the records that vanish: unmatched, and no validated or quarantined row is theirs
        self._unmatched()
        self.copies.close()
        vanishing = select(u.id).where(
            not_(exists().where(s.record_id == u.id)), not_(exists().where(i.record_id == u.id))
        )
        self.conn.execute(insert(self.gone).from_select(["id"], vanishing))
        self.result.vanished = count(select(func.count()).select_from(self.gone))
        self.result.invalid_kept = self._kept()
        assert self._survey is not None
        self._current_count = len(self._survey[0])  # counted before anything changed
        self._staged = staged

    def _count_first_load(self) -> None:
        """`_count` when there was no record of this kind: every staged row was added."""
        self.result.added = self._staged = self._validated
        self.result.updated = self.result.unchanged = self.result.vanished = 0
        self.result.invalid_kept = self._current_count = 0

    def _scalar(self, query: Any) -> int:
        return int(self.conn.execute(query).scalar_one())

    def _guard(self) -> None:
        if self.request.force:
            return
        if self._staged == 0:
            self._refuse(
                f"the snapshot has no valid in-scope rows ({self.result.rows_read} read); "
                "an empty export would vanish every record"
            )
        elif self._current_count and self.result.vanished / self._current_count > self.max_share:
            share = self.result.vanished / self._current_count
            self._refuse(
                f"the snapshot would vanish {self.result.vanished} of {self._current_count} current "
                f"records ({share:.0%}, more than the {self.max_share:.0%} allowed by "
                "sync.max_vanish_share); check the export, or re-run with --force"
            )

    def _refuse(self, reason: str) -> None:
        self.result.refused = True
        self.result.reason = reason

    # ------------------------------------------------------------------ apply
    def _apply(self) -> None:
        if self.direct:  # inserted while staging; nothing else changes
            self._history_of_added()
            return
        # Vanished first: records added below have no staging link and would look vanished.
        self._mark_vanished()
        self._apply_updates()
        self._insert_added()
        self._refresh_raw_hashes()
        self._flag_invalid_rows()

    def _flag_invalid_rows(self) -> None:
        """末次快照行无效: flag the records kept for a quarantined row (the quarantine row's
        id; a history entry when newly flagged); clear the flag of this source's others."""
        r, i, q, sid = records.c, self.invalid.c, quarantine.c, self.result.sync_id
        if self._survey is None or self._survey[1]:  # (no record of the kind is flagged)
            self.conn.execute(
                update(records)
                .where(
                    r.invalid_row_id.is_not(None),
                    scanned(r.kind) == self.request.kind,
                    r.source == self.request.source,
                    not_(self._kept_invalid()),
                )
                .values(invalid_row_id=None)
            )
        if not self.result.invalid_kept:
            return
        newly = select(r.id, literal(sid), literal("row_invalid"), literal(self.today, Date()))
        self.conn.execute(
            insert(changes).from_select(
                ["record_id", "sync_id", "change", "on"],
                newly.where(self._kept_invalid(), r.invalid_row_id.is_(None)),
            )
        )
        first_issue = (
            select(func.min(q.id))
            .join_from(quarantine, self.invalid, q.row_no == i.row_no)
            .where(q.sync_id == sid, q.level == "error", i.record_id == r.id)
            .scalar_subquery()
        )
        self.conn.execute(
            update(records).where(self._kept_invalid()).values(invalid_row_id=first_issue)
        )

    def _refresh_raw_hashes(self) -> None:
        """Unchanged records validated in full (first sync after a configuration change,
        after an upgrade, a cell that changed but normalises the same): store their new
        raw fingerprint so that the next sync skips them."""
        if self._validated - self.result.added - self.result.updated == 0:
            return
        s, r = self.staging.c, records.c
        if _update_from(self.conn):
            self.conn.execute(update(records).values(raw_hash=s.raw_hash).where(self._stale()))
        else:
            new = select(s.raw_hash).where(s.record_id == r.id).scalar_subquery()
            self.conn.execute(
                update(records).values(raw_hash=new).where(exists().where(self._stale()))
            )

    def _added_constants(self) -> dict[str, Any]:
        """The columns of an added record that do not come from its row."""
        sid = self.result.sync_id
        return {
            "kind": self.request.kind,
            "source": self.request.source,
            "first_sync_id": sid,
            "last_sync_id": sid,
            "first_seen_on": self.today,
            "progress": 0,
            "willingness": "unknown",
            "green_channel": False,
            "market_regulation": False,
        }

    def _insert_added(self) -> None:
        if not self.result.added:
            return  # (both statements would read every record for nothing)
        s = self.staging.c
        names = _STAGED[1:]
        consts = self._added_constants()
        cols = [s[n] for n in names] + [
            literal(v, records.c[k].type).label(k) for k, v in consts.items()
        ]
        query = select(*cols).where(s.record_id.is_(None)).order_by(s.row_no)
        self.conn.execute(insert(records).from_select([*names, *consts], query))
        self._history_of_added()

    def _history_of_added(self) -> None:
        r, sid = records.c, self.result.sync_id
        history = select(r.id, literal(sid), literal("added"), literal(self.today, Date())).where(
            r.first_sync_id == sid
        )
        self.conn.execute(
            insert(changes).from_select(["record_id", "sync_id", "change", "on"], history)
        )

    def _apply_updates(self) -> None:
        """Each changed record's history (its old values, read a page at a time), then
        the records, in one UPDATE … FROM the staging table where the database takes it
        (else a page at a time)."""
        if not self.result.updated:
            return
        set_based = _update_from(self.conn)
        last = -1
        while rows := self._changed_page(last):
            self._history_of_changes(rows)
            if not set_based:
                self._update_page(rows)
            last = rows[-1]["new"]["row_no"]
        if set_based:
            s = self.staging.c
            self.conn.execute(
                update(records)
                .values(
                    {k: s[k] for k in _NEW_VALUES}
                    | {
                        "vanished_on": None,
                        "last_sync_id": self.result.sync_id,
                        "source": self.request.source,
                    }
                )
                .where(self._changed())
            )

    def _changed_page(self, after: int) -> list[dict[str, dict[str, Any]]]:
        s, r = self.staging.c, records.c
        new_cols = [s[n] for n in ("row_no", "record_id", *_NEW_VALUES)]
        old_cols = [r[n].label(f"old_{n}") for n in (*_HISTORY_FIELDS, "vanished_on")]
        query = (
            select(*new_cols, *old_cols)
            .select_from(self.staging.join(records, self._changed()))
            .where(s.row_no > after)
            .order_by(s.row_no)
            .limit(self.batch_size)
        )
        pages = []
        for row in self.conn.execute(query).mappings():
            new = {k: row[k] for k in ("row_no", "record_id", *_NEW_VALUES)}
            old = {k: row[f"old_{k}"] for k in (*_HISTORY_FIELDS, "vanished_on")}
            pages.append({"new": new, "old": old})
        return pages

    def _history_of_changes(self, rows: list[dict[str, dict[str, Any]]]) -> None:
        """`updated` (or `reappeared`) with the old values of the fields that changed."""
        history: list[dict[str, Any]] = []
        for row in rows:
            new, old = row["new"], row["old"]
            diff = {k: _json(old[k]) for k in _HISTORY_FIELDS if old[k] != new[k]}
            change = "reappeared" if old["vanished_on"] is not None else "updated"
            history.append(
                {
                    "record_id": new["record_id"],
                    "sync_id": self.result.sync_id,
                    "change": change,
                    "old_values": diff or None,
                    "on": self.today,
                }
            )
        self.history_writer.write(history)
        self.copies.close()  # the next page is a query

    def _update_page(self, rows: list[dict[str, dict[str, Any]]]) -> None:
        params = [
            {**{f"v_{k}": row["new"][k] for k in _NEW_VALUES}, "v_id": row["new"]["record_id"]}
            for row in rows
        ]
        values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in _NEW_VALUES}
        stmt = (
            update(records)
            .where(records.c.id == bindparam("v_id"))
            .values(
                **values,
                vanished_on=None,
                last_sync_id=self.result.sync_id,
                source=self.request.source,
            )
        )
        self.conn.execute(stmt, params)

    def _mark_vanished(self) -> None:
        g, sid = self.gone.c, self.result.sync_id
        gone = select(g.id, literal(sid), literal("vanished"), literal(self.today, Date()))
        self.conn.execute(
            insert(changes).from_select(["record_id", "sync_id", "change", "on"], gone)
        )
        self.conn.execute(
            update(records)
            .where(records.c.id.in_(select(g.id)))
            .values(vanished_on=self.today, last_sync_id=sid)
        )

    def _close_run(self) -> None:
        res = self.result
        values = {
            k: getattr(res, k)
            for k in (
                "rows_read",
                "added",
                "updated",
                "unchanged",
                "vanished",
                "out_of_scope",
                "quarantined",
                "warnings",
                "reason",
            )
        }
        values |= {
            "status": "refused" if res.refused else "applied",
            "finished_at": self.request.now,
        }
        self.conn.execute(
            update(table_of(SyncRun)).where(table_of(SyncRun).c.id == res.sync_id), values
        )


def _nothing() -> None:
    pass


def _duplicate(row_no: int, first: int, authority: str, key: str) -> Issue:
    return Issue(
        row_no,
        "decision_no",
        f"duplicate of row {first} ({authority} {key}); the first occurrence wins",
    )


def _merged(
    columns: Mapping[str, Sequence[Any]], valid: list[dict[str, Any]]
) -> dict[str, Sequence[Any]]:
    """The accepted rows' columns and the rows validated one by one, in row order."""
    row_nos = [*columns.get("row_no", ()), *(values["row_no"] for values in valid)]
    order = sorted(range(len(row_nos)), key=row_nos.__getitem__)
    merged: dict[str, Sequence[Any]] = {}
    for name in _STAGED:
        values = [*columns.get(name, ()), *(v[name] for v in valid)]
        merged[name] = [values[i] for i in order]
    return merged


def _digests(digest: RawDigest, rows: list[RawRow]) -> list[str]:
    """Each row's raw fingerprint (hex); "" for a row that does not fit the header (never
    known)."""
    digests = digest.many(list(map(_VALUES, rows)))
    if any(map(_PROBLEM, rows)):
        digests = [d if r.problem is None else "" for r, d in zip(rows, digests, strict=True)]
    return digests


def _fingerprinted(digest: RawDigest, batch: RowBatch) -> tuple[list[RawRow] | None, list[str]]:
    """(the rows, if they had to be parsed for it; each row's raw fingerprint): CSV rows by
    their bytes, unparsed; others by their cells."""
    if batch.records is not None and batch.encoding is not None:
        return None, digest.of_records(batch.records, batch.encoding)
    rows = batch.rows()
    return rows, _digests(digest, rows)


def _set_known_aside(
    batch: RowBatch,
    rows: list[RawRow] | None,
    digests: list[str],
    known: dict[str, int],
    keys: _Known,
) -> tuple[list[RawRow] | None, list[str]]:
    """The rows (parsed only now, if not yet) and fingerprints not known unchanged; a
    known row's (record, row) goes to `keys`. `known.pop`, in row order: a second row
    with the same cells is not known."""
    found: list[Any] = list(map(known.pop, digests, repeat(None)))
    if found.count(None) == len(found):
        return rows, digests
    hit = [f is not None for f in found]
    keys.extend(compress(found, hit), compress(batch.row_nos, hit))
    left = [i for i, h in enumerate(hit) if not h]
    rows = batch.rows(left) if rows is None else [rows[i] for i in left]
    return rows, [digests[i] for i in left]


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A bulk load makes millions of short-lived lists and tuples: at the default
    threshold (700 new objects) the cyclic collector runs thousands of times and, with
    the heap a large sync holds, costs as much as the work. Rarer for the load, then as
    it was."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _plain_batches(conn: Connection, query: Any) -> Iterator[Sequence[Sequence[Any]]]:
    """Batches of the rows of a query of plain columns (text, integers), streamed from the driver's
    own cursor on SQLite and PostgreSQL (psycopg, server-side), with none of the result
    machinery per row: for a million rows."""
    dialect = conn.dialect
    if not (
        dialect.name == "sqlite" or (dialect.name, dialect.driver) == ("postgresql", "psycopg")
    ):
        yield from conn.execute(query.execution_options(yield_per=50_000)).partitions()
        return
    compiled = query.compile(dialect=dialect)
    params: Any = compiled.params
    if dialect.name == "sqlite":
        params = [params[name] for name in compiled.positiontup or ()]
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    else:
        cursor = conn.connection.driver_connection.cursor(name="sync_plain_rows")  # type: ignore[union-attr]
        cursor.itersize = 50_000
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(50_000):
            yield rows
    finally:
        cursor.close()


def _update_from(conn: Connection) -> bool:
    """Whether the database takes UPDATE … FROM (PostgreSQL; SQLite from 3.33)."""
    if conn.dialect.name == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 33)
    return conn.dialect.name == "postgresql"


def _json(value: Any) -> Any:
    """Old values go into a JSON column: dates and decimals as text."""
    if value is None or isinstance(value, (str, int, float, bool, dict, list)):
        return value
    return str(value)
