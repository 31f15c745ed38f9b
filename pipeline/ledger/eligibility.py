"""Evaluate records as of a date: in the database (batched recompute) or in a file.

The recompute streams penalty records in id order, evaluates each with the pure rule
engine (`pipeline.domain.rules`), and writes back only the rows whose results changed — on a
normal day that is the handful whose status moved, so the daily run is cheap; a
rules change rewrites what it must, in batches. Records that cannot be evaluated get
status ``error`` with the reason, and the rest go on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, func, select

from pipeline.config import Config
from pipeline.config.rules import RulesConfig
from pipeline.db.locks import write_lock
from pipeline.db.models import Record, table_of
from pipeline.db.types import scanned
from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.routing import Route, Router
from pipeline.domain.rules import Evaluation, FactsKey, RecordFacts, evaluate
from pipeline.errors import CalendarError, InputError
from pipeline.sync.rows import RowValidator
from pipeline.sync.sources.fields import build_mapping
from pipeline.sync.sources.files import read_snapshot

records = table_of(Record)
RESULT_FIELDS = (
    "severity",
    "severity_source",
    "rule_set",
    "market_regulation",
    "period_start",
    "min_end",
    "max_end",
    "repairable_from",
    "removal_on",
    "publish_by",
    "status",
    "status_reason",
)
FACT_COLUMNS = (
    "id",
    "decision_no",
    "authority",
    "entity_name",
    "uscc",
    "decision_date",
    "publication_date",
    "penalty_types",
    "penalty_content",
    "fine_amount",
    "severity_given",
    "violation_type",
    "facts",
    "basis",
    "industry",
    "department_code",
    "publish_until",
)
OUTPUT_FIELDS = (
    "decision_no",
    "authority",
    "entity_name",
    "uscc",
    "severity",
    "severity_source",
    "rule_set",
    "period_start",
    "min_end",
    "max_end",
    "repairable_from",
    "removal_on",
    "publish_by",
    "status",
    "reason",
)


@dataclass(frozen=True)
class Evaluator:
    """Rules, calendar and the market-regulation departments: all evaluation needs."""

    rules: RulesConfig
    calendar: WorkingCalendar
    market_departments: frozenset[str]

    @classmethod
    def from_config(cls, config: Config, calendar: WorkingCalendar | None = None) -> Evaluator:
        markets = frozenset(d.code for d in config.departments.departments if d.market_regulation)
        return cls(config.rules, calendar or WorkingCalendar(config.holidays), markets)

    @cached_property
    def fingerprint(self) -> str:
        """What every evaluation depends on besides a record's facts and the day: the rules,
        the working-day calendar, the market-regulation departments and the evaluation code
        itself (its source files). Stored with each result (`records.evaluated_key`)."""
        digest = hashlib.sha256()
        for part in (
            self.rules.model_dump_json(),
            self.calendar.fingerprint(),
            ",".join(sorted(self.market_departments)),
            *_CODE,
        ):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return digest.hexdigest()[:24]

    def facts(self, row: Any) -> RecordFacts:
        return self._facts(*(row[k] for k in FACT_COLUMNS[1:]))

    def _facts(
        self,
        decision_no: Any,
        authority: Any,
        entity_name: Any,
        uscc: Any,
        decision_date: Any,
        publication_date: Any,
        penalty_types: Any,
        penalty_content: Any,
        fine_amount: Any,
        severity_given: Any,
        violation_type: Any,
        facts: Any,
        basis: Any,
        industry: Any,
        department_code: Any,
        publish_until: Any,
    ) -> RecordFacts:
        """`facts` from the values of FACT_COLUMNS[1:], in that order (the recompute's rows)."""
        return RecordFacts(
            decision_no=decision_no,
            authority=authority,
            entity_name=entity_name,
            uscc=uscc or "",
            decision_date=decision_date,
            publication_date=publication_date,
            penalty_types=tuple((penalty_types or "").split(";")),
            penalty_content=penalty_content or "",
            fine_amount_wan=_decimal(fine_amount),
            severity_given=severity_given,
            violation_type=violation_type or "",
            facts=facts or "",
            basis=basis or "",
            industry=industry or "",
            market_regulation=department_code in self.market_departments,
            department_code=department_code or "",
            publish_until=publish_until,
        )

    def columns(self, row: Any, today: dt.date) -> dict[str, Any]:
        """The eligibility columns of one record: results, or status error with the reason."""
        return dict(zip(RESULT_FIELDS, self._values(self.facts(row), today), strict=True))

    def _values(self, facts: RecordFacts, today: dt.date) -> tuple[Any, ...]:
        """`columns` as a tuple in RESULT_FIELDS order."""
        try:
            result = evaluate(facts, today, self.rules, self.calendar)
        except (ValueError, CalendarError) as exc:
            return (
                None,
                None,
                None,
                facts.market_regulation,
                None,
                None,
                None,
                None,
                None,
                None,
                "error",
                str(exc),
            )
        return _result_values(result, facts)


def _sources() -> tuple[str, ...]:
    """The evaluation code as it runs (a change re-evaluates every record once)."""
    from pipeline.domain import calendar, periods, rules

    out = []
    for module in (rules, periods, calendar, sys.modules[__name__]):
        try:
            out.append(Path(module.__file__ or "").read_text(encoding="utf-8"))
        except OSError:  # no source to read: never trust a stored result
            out.append(secrets.token_hex(16))
    return tuple(out)


_CODE = _sources()


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _result_values(result: Evaluation, facts: RecordFacts) -> tuple[Any, ...]:
    reason = result.reason + "".join(f"; warning: {w}" for w in result.warnings)
    return (
        result.severity,
        result.severity_source,
        result.rule_set,
        facts.market_regulation,
        result.period_start,
        result.min_end,
        result.max_end,
        result.repairable_from,
        result.removal_on,
        result.publish_by,
        result.status,
        reason,
    )


# --------------------------------------------------------------------------- database


@dataclass
class Recompute:
    evaluated: int = 0
    changed: int = 0
    errors: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


STATUS_ORDER = (
    "not_published",
    "expired",
    "non_repairable",
    "in_min_period",
    "repairable",
    "error",
)


def recompute(
    engine: Engine,
    evaluator: Evaluator,
    today: dt.date,
    batch: int = 20000,
    progress: Callable[[int], None] | None = None,
) -> Recompute:
    """Re-evaluate every penalty record as of `today`; write back what changed.

    A record whose `evaluated_key` says its results were computed from its present facts
    (content hash) under today's rules, calendar and code (`Evaluator.fingerprint`) and
    whose status on `today`, derived from its stored dates, is the one stored, would be
    evaluated to exactly what it holds: SQL leaves it out (see `_DriverIO.pages`). The
    others are evaluated — once per distinct `FactsKey` — and written when their results
    (or only their key) changed. On a normal day that reads the few records the sync
    changed or whose status moved; the first evaluation, or a rules change, reads all.
    """
    result = Recompute()
    io = _DriverIO.of(engine.dialect, today)
    values = _Memo(evaluator, today, io)
    prefix = f"{evaluator.fingerprint}:"
    skip = evaluator.rules.selection_key == "decision_date"
    seen = 0
    statuses: dict[str, int] = {}
    with engine.begin() as conn:
        write_lock(conn, "evaluate")
        for page in io.pages(conn, batch, prefix if skip else None):
            writes = []
            for row in page:
                if row[0] != "penalty":
                    continue
                new = values(row)
                old = row[_FACTS_END:_RESULTS_END]
                key = prefix + row[_HASH]
                if new != old:
                    writes.append((*new, io.today, key, row[1]))
                    result.changed += 1
                elif row[_KEY] != key:  # same results, computed anew: only the key moves
                    writes.append((*old, row[_ON], key, row[1]))
                status = new[_STATUS]
                statuses[status] = statuses.get(status, 0) + 1
                seen += 1
            io.write(conn, writes)
            if progress:
                progress(seen)
        io.finish(conn)
        # every penalty read (a first evaluation): counted already; else ask the table
        counts = _ordered(statuses) if seen == _penalties(conn) else _status_counts(conn)
    result.by_status = counts
    result.evaluated = sum(counts.values())
    result.errors = counts.get("error", 0)
    if progress:
        progress(result.evaluated)
    return result


def _status_counts(conn: Connection) -> dict[str, int]:
    """Penalty records per status, in the statuses' precedence."""
    r = records.c
    query = select(r.status, func.count()).where(scanned(r.kind) == "penalty").group_by(r.status)
    rows = conn.execute(query)
    return _ordered({str(status): int(n) for status, n in rows})


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    found = dict(counts)
    return {s: found.pop(s) for s in STATUS_ORDER if s in found} | dict(sorted(found.items()))


def _penalties(conn: Connection) -> int:
    """How many penalty records there are (the key index answers it alone)."""
    count = select(func.count()).where(records.c.kind == "penalty")
    return int(conn.execute(count).scalar_one())


_UNREAD = ("decision_no", "entity_name", "uscc")
"""Facts `evaluate` never looks at: not read by the recompute (empty in its `RecordFacts`)."""
_READ_FACTS = tuple(name for name in FACT_COLUMNS if name not in _UNREAD)
READ_COLUMNS = (
    "kind",
    *_READ_FACTS,
    *RESULT_FIELDS,
    "evaluated_on",
    "evaluated_key",
    "content_hash",
)
"""What the recompute reads of every record it evaluates, in this order."""
_FACTS_END = 1 + len(_READ_FACTS)
_RESULTS_END = _FACTS_END + len(RESULT_FIELDS)
_ON, _KEY, _HASH = _RESULTS_END, _RESULTS_END + 1, _RESULTS_END + 2
_STATUS = RESULT_FIELDS.index("status")
_FACT_AT = {name: 1 + i for i, name in enumerate(_READ_FACTS)}
"""Where each fact column read is in a row (the facts follow `kind`)."""
_POSITIONS = {
    **{name: at for name, at in _FACT_AT.items() if name != "fine_amount"},
    "fine_amount_wan": _FACT_AT["fine_amount"],
}
"""Where each `RecordFacts` field is in a row read (for `FactsKey`)."""
_MEMO_LIMIT = 250_000


class _Memo:
    """A row's results in stored form, evaluated once per `FactsKey` (a few percent of rows).

    On a miss the row's facts are converted as SQLAlchemy would (the columns' result
    processors) and evaluated by `Evaluator`, exactly as one record alone would be.
    """

    def __init__(self, evaluator: Evaluator, today: dt.date, io: _DriverIO) -> None:
        self.evaluator, self.today, self.io = evaluator, today, io
        self.key = FactsKey(
            evaluator.rules,
            today,
            _POSITIONS,
            evaluator.market_departments,
            io.reader("decision_date"),
            io.reader("fine_amount"),
        )
        self.results: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def __call__(self, row: Sequence[Any]) -> tuple[Any, ...]:
        key = self.key(row)
        found = self.results.get(key)
        if found is None:
            if len(self.results) >= _MEMO_LIMIT:
                self.results.clear()
            facts = self.evaluator._facts(*self.io.facts(row))
            found = self.results[key] = self.io.stored_form(
                self.evaluator._values(facts, self.today)
            )
        return found


def _driver(conn: Connection) -> Any:
    """The DB-API connection under `conn` (psycopg: for COPY)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


_WRITTEN = (*RESULT_FIELDS, "evaluated_on", "evaluated_key", "id")
"""A written row: the results, the evaluation date, the evaluated key, the record id."""
_CHANGES = "eligibility_changes"


@dataclass(frozen=True)
class _DriverIO:
    """Rows read and written through the DB-API driver, values in its stored form.

    Reads: one statement per page of ids (keyset), the skip test in SQL, through the
    driver's own cursor — no SQLAlchemy row or type processing for a million rows; a fact
    is converted (the column's result processor) only when the record is evaluated.

    New results are converted with SQLAlchemy's own bind processors for the column types
    (SQLite: dates as ISO text, booleans as 0/1; PostgreSQL: none), so comparing them
    with the stored values as read is the same test as comparing the Python values, and
    the changed rows go to the driver without per-row SQLAlchemy work. The conversions
    are memoised per value.

    Writes: SQLite, one executemany UPDATE per page (in the one transaction); PostgreSQL
    (psycopg), each page COPYed into a temporary table and one UPDATE … FROM it at the
    end — a million single-row UPDATEs cost the server several times more.
    """

    dialect: Dialect
    processors: tuple[tuple[int, Callable[[Any], Any], dict[Any, Any]], ...]
    readers: tuple[tuple[int | None, Callable[[Any], Any] | None], ...]
    """Per value of FACT_COLUMNS[1:]: where it is in a row read (None: not read) and how
    it is converted."""
    today: Any
    update: str
    copy: bool

    @classmethod
    def of(cls, dialect: Dialect, today: dt.date) -> _DriverIO:
        def processor(name: str) -> Callable[[Any], Any] | None:
            return records.c[name].type.dialect_impl(dialect).bind_processor(dialect)

        procs: tuple[tuple[int, Callable[[Any], Any], dict[Any, Any]], ...] = tuple(
            (i, p, {}) for i, n in enumerate(RESULT_FIELDS) if (p := processor(n)) is not None
        )
        readers = tuple(
            (_FACT_AT.get(n), _memoised(_result_processor(dialect, n))) for n in FACT_COLUMNS[1:]
        )
        on = processor("evaluated_on")
        copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        q = dialect.identifier_preparer.quote
        if copy:
            sets = ", ".join(f"{q(n)} = c.{q(n)}" for n in _WRITTEN[:-1])
            sql = f"UPDATE {q(records.name)} SET {sets} FROM {_CHANGES} c WHERE {q(records.name)}.id = c.id"
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sets = ", ".join(f"{q(n)} = {mark}" for n in _WRITTEN[:-1])
            sql = f"UPDATE {q(records.name)} SET {sets} WHERE {q('id')} = {mark}"
        return cls(dialect, procs, readers, on(today) if on else today, sql, copy)

    def reader(self, name: str) -> Callable[[Any], Any]:
        """A fact column's value as read → its Python value (memoised per value)."""
        return _memoised(_result_processor(self.dialect, name)) or (lambda value: value)

    def facts(self, row: Sequence[Any]) -> list[Any]:
        """The values of FACT_COLUMNS[1:] of `row`, converted (for `Evaluator._facts`);
        those not read are empty."""
        values = []
        for at, process in self.readers:
            value = "" if at is None else row[at]
            values.append(value if process is None or value is None else process(value))
        return values

    def stored_form(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.processors:
            return values
        out = list(values)
        for i, process, memo in self.processors:
            value = out[i]
            try:
                out[i] = memo[value]
            except KeyError:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                out[i] = memo[value] = process(value)
        return tuple(out)

    def pages(self, conn: Connection, batch: int, prefix: str | None) -> Iterator[list[Any]]:
        """Every record in id pages (keyset) — with `prefix` (the evaluator's fingerprint and
        ':'), without the penalties that need no evaluation today:

        - its `evaluated_key` is `prefix` + its content hash: the stored results were
          computed from its present facts, under today's rules, calendar and code;
        - it was not an error and its decision date is not after `today`;
        - its status on `today`, from the stored dates, is the stored one. This is
          `rules._status`: expired from `removal_on`; else non_repairable when there is no
          minimum period end (never early or no minimum); else in_min_period up to and
          including `min_end`; then repairable. A record not published stays so.

        Everything else a full evaluation depends on — the rule set, the periods, the
        working-day dates and the reason's wording (which names the removal as past only
        when expired) — follows from the facts, the configuration and the code, all in
        the key. No ``kind`` condition outside the test: SQLite, without statistics, would
        then scan the (kind, authority, decision_no) index and sort every page instead of
        walking the primary key. Values come as the driver gives them.
        """
        q = self.dialect.identifier_preparer.quote
        mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        columns = ", ".join(q(n) for n in READ_COLUMNS)
        where = f"{q('id')} > {mark}"
        params: list[Any] = []
        if prefix is not None:
            t = mark
            predicted = (
                "CASE WHEN status = 'not_published' THEN status "
                "WHEN removal_on IS NULL THEN NULL "
                f"WHEN removal_on <= {t} THEN 'expired' "
                "WHEN min_end IS NULL THEN 'non_repairable' "
                f"WHEN {t} <= min_end THEN 'in_min_period' "
                "ELSE 'repairable' END"
            )
            where += (
                " AND CASE WHEN kind = 'penalty'"
                f" AND evaluated_key = CAST({mark} AS TEXT) || content_hash"
                f" AND status <> 'error' AND decision_date <= {t}"
                f" AND status = {predicted} THEN 0 ELSE 1 END = 1"
            )
            params = [prefix, self.today, self.today, self.today]
        sql = (
            f"SELECT {columns} FROM {q(records.name)} WHERE {where} ORDER BY {q('id')} LIMIT {mark}"
        )
        last = 0
        cursor = _driver(conn).cursor()
        try:
            while True:
                cursor.execute(sql, [last, *params, batch])
                page = cursor.fetchall()
                if not page:
                    return
                yield page
                last = page[-1][1]
        finally:
            cursor.close()

    def write(self, conn: Connection, params: list[tuple[Any, ...]]) -> None:
        """Write (SQLite) or stage (PostgreSQL) one page of rows, each as _WRITTEN."""
        if not params:
            return
        if not self.copy:
            conn.exec_driver_sql(self.update, params)
            return
        columns = ", ".join(_WRITTEN)
        with _driver(conn).cursor() as cur:
            cur.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_CHANGES} ON COMMIT DROP AS "
                f"SELECT {columns} FROM {records.name} WITH NO DATA"
            )
            with cur.copy(f"COPY {_CHANGES} ({columns}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)

    def finish(self, conn: Connection) -> None:
        """PostgreSQL: apply the staged rows in one UPDATE (the table goes at commit)."""
        if not self.copy:
            return
        with _driver(conn).cursor() as cur:
            cur.execute(f"SELECT to_regclass('pg_temp.{_CHANGES}') IS NOT NULL")
            staged = cur.fetchone()
            if staged and staged[0]:
                cur.execute(f"ANALYZE {_CHANGES}")  # the planner's row count: join or index
                cur.execute(self.update)
                cur.execute(f"DROP TABLE {_CHANGES}")


def _memoised(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """`process` remembering its answers (a few thousand distinct dates across a million
    records; SQLAlchemy's SQLite date parsing costs microseconds a call)."""
    if process is None:
        return None
    memo: dict[Any, Any] = {}

    def read(value: Any) -> Any:
        found = memo.get(value, memo)
        if found is memo:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            found = memo[value] = process(value)
        return found

    return read


def _result_processor(dialect: Dialect, name: str) -> Callable[[Any], Any] | None:
    """How SQLAlchemy converts a fact column's value as the driver gives it (psycopg gives
    dates, decimals and text as they are: nothing to convert)."""
    if dialect.name == "postgresql":
        return None
    column_type = records.c[name].type.dialect_impl(dialect)
    process: Callable[[Any], Any] | None = column_type.result_processor(dialect, None)
    return process


def penalty_count(engine: Engine) -> int:
    """Penalty records the recompute reads (a progress bar's total)."""
    r = table_of(Record).c
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(r.kind == "penalty")).scalar_one())


def never_evaluated(engine: Engine) -> int:
    """Open penalty records never evaluated (loaded by a sync since the last recompute)."""
    r = table_of(Record).c
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    r.kind == "penalty", r.closed_on.is_(None), r.evaluated_on.is_(None)
                )
            ).scalar_one()
        )


def stored(
    engine: Engine, department: str | None = None, status: str | None = None
) -> Iterator[dict[str, Any]]:
    """Stored eligibility of penalty records, in the `eligibility --json` shape."""
    query = select(records).where(records.c.kind == "penalty").order_by(records.c.id)
    if department:
        query = query.where(records.c.department_code == department)
    if status:
        query = query.where(records.c.status == status)
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            yield {
                **{k: row[k] for k in OUTPUT_FIELDS if k != "reason"},
                "reason": row["status_reason"],
                "department": row["department_code"],
                "vanished_on": row["vanished_on"],
                "restrictions": row["restrictions"] or [],
            }


# --------------------------------------------------------------------------- snapshot file


def evaluate_file(
    config: Config, evaluator: Evaluator, path: Path, today: dt.date
) -> Iterator[dict[str, Any]]:
    """Evaluate every row of a snapshot file, with no database; bad rows say why."""
    router = _NoScope(config.departments, config.settings.jurisdiction)
    with read_snapshot(path, limits=config.settings.files.xlsx_limits()) as snapshot:
        mapping = build_mapping(snapshot.headers, "penalties")
        missing = mapping.describe_missing()
        if missing:
            raise InputError(f"{path}: the header lacks required column(s) {'; '.join(missing)}")
        if mapping.describe_repeated():
            raise InputError(f"{path}: {'; '.join(mapping.describe_repeated())}")
        validator = RowValidator("penalty", mapping, router)
        for raw in snapshot:
            outcome = validator.validate(raw)
            if outcome.scope_reason == "natural_person":  # nothing of a person is shown
                yield _error_line({}, f"row {raw.row_no}: a natural person (自然人), not evaluated")
                continue
            if outcome.values is None:
                fields, _ = mapping.apply(raw.values)
                reason = "; ".join(
                    f"row {i.row}: {i.field or '-'}: {i.reason}"
                    for i in outcome.issues
                    if i.level == "error"
                )
                yield _error_line(fields, reason)
                continue
            row = {**outcome.values, "id": None}
            yield _output(row, evaluator.columns(row, today))


class _NoScope(Router):
    """A file evaluated on its own: every row is answered, in the district or not."""

    def in_scope(self, uscc: str | None, authority_uscc: str | None, route: Route) -> bool:
        return True


def _error_line(fields: dict[str, object], reason: str) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(OUTPUT_FIELDS)
    for key in ("decision_no", "authority", "entity_name", "uscc"):
        value = fields.get(key)
        out[key] = str(value).strip() if value not in (None, "") else None
    out.update(status="error", reason=reason, restrictions=None)
    return out


def _output(row: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in ("decision_no", "authority", "entity_name", "uscc")}
    out.update({k: columns[k] for k in OUTPUT_FIELDS if k in columns})
    out["reason"] = columns["status_reason"]
    out["department"] = row.get("department_code")
    out["restrictions"] = None  # needs the ledger: the entity's other records and the lists
    return out
