"""Evaluate records as of a date: in the database (batched recompute) or in a file.

The recompute streams penalty records in id order, evaluates each with the pure rule
engine (`pipeline.domain.rules`), and writes back only the rows whose results changed — on a
normal day that is the handful whose status moved, so the daily run is cheap; a
rules change rewrites what it must, in batches. Records that cannot be evaluated get
status ``error`` with the reason, and the rest go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, func, select, type_coerce
from sqlalchemy.types import NullType

from pipeline.config import Config
from pipeline.config.rules import RulesConfig
from pipeline.db.locks import write_lock
from pipeline.db.models import Record, table_of
from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.routing import Route, Router
from pipeline.domain.rules import Evaluation, RecordFacts, evaluate
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


def recompute(
    engine: Engine,
    evaluator: Evaluator,
    today: dt.date,
    batch: int = 20000,
    progress: Callable[[int], None] | None = None,
) -> Recompute:
    """Re-evaluate every penalty record as of `today`; write back what changed."""
    result = Recompute()
    io = _DriverIO.of(engine.dialect, today)
    with engine.begin() as conn:
        write_lock(conn, "evaluate")
        for page in _pages(conn, batch):
            changes = []
            for row in page:
                if row[0] != "penalty":
                    continue
                new = io.stored_form(evaluator._values(evaluator._facts(*row[2:_FACTS_END]), today))
                old = row[_FACTS_END:]
                status = old[_STATUS]
                if new != old:
                    changes.append((*new, io.today, row[1]))
                    status = new[_STATUS]
                result.by_status[status] = result.by_status.get(status, 0) + 1
                result.errors += status == "error"
                result.evaluated += 1
            result.changed += len(changes)
            io.write(conn, changes)
            if progress:
                progress(result.evaluated)
        io.finish(conn)
    return result


READ_COLUMNS = ("kind", *FACT_COLUMNS, *RESULT_FIELDS)
"""What the recompute reads of every record, in this order."""
_FACTS_END = 1 + len(FACT_COLUMNS)
_STATUS = RESULT_FIELDS.index("status")


def _pages(conn: Connection, batch: int) -> Iterator[Sequence[Any]]:
    """Every record in id pages (keyset); the caller skips list entries.

    No ``kind`` condition in SQL: SQLite, without statistics, would then scan the
    (kind, authority, decision_no) index and sort every page instead of walking the
    primary key. The stored results come as the driver gives them (no type conversion).
    """
    cols = [
        records.c[n] if i < _FACTS_END else type_coerce(records.c[n], NullType())
        for i, n in enumerate(READ_COLUMNS)
    ]
    last = 0
    while True:
        query = select(*cols).where(records.c.id > last).order_by(records.c.id).limit(batch)
        page = conn.execute(query).all()
        if not page:
            return
        yield page
        last = page[-1][1]


_MEMO_LIMIT = 100_000


def _driver(conn: Connection) -> Any:
    """The DB-API connection under `conn` (psycopg: for COPY)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


_WRITTEN = (*RESULT_FIELDS, "evaluated_on", "id")
"""A changed row as written: the new results, the evaluation date, the record id."""
_CHANGES = "eligibility_changes"


@dataclass(frozen=True)
class _DriverIO:
    """Result values in the driver's stored form, and the set-based write of changed rows.

    New results are converted with SQLAlchemy's own bind processors for the column types
    (SQLite: dates as ISO text, booleans as 0/1; PostgreSQL: none), so comparing them
    with the stored values as read is the same test as comparing the Python values, and
    the changed rows go to the driver without per-row SQLAlchemy work. The conversions
    are memoised per value: a few thousand distinct dates across a million records, and
    SQLAlchemy's SQLite date formatting costs microseconds a call.

    Writes: SQLite, one executemany UPDATE per page (in the one transaction); PostgreSQL
    (psycopg), each page COPYed into a temporary table and one UPDATE … FROM it at the
    end — a million single-row UPDATEs cost the server several times more.
    """

    processors: tuple[tuple[int, Callable[[Any], Any], dict[Any, Any]], ...]
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
        return cls(procs, on(today) if on else today, sql, copy)

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

    def write(self, conn: Connection, params: list[tuple[Any, ...]]) -> None:
        """Write (SQLite) or stage (PostgreSQL) one page of changed rows, each as _WRITTEN."""
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
