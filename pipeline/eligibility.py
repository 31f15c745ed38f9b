"""Evaluate records as of a date: in the database (batched recompute) or in a file.

The recompute streams penalty records in id order, evaluates each with the pure rule
engine (`pipeline.rules`), and writes back only the rows whose results changed — on a
normal day that is the handful whose status moved, so the daily run is cheap; a
rules change rewrites what it must, in batches. Records that cannot be evaluated get
status ``error`` with the reason, and the rest go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from pipeline.calendar import WorkingCalendar, load_holidays
from pipeline.config import Config
from pipeline.db.models import Record, table_of
from pipeline.errors import CalendarError
from pipeline.routing import Route, Router
from pipeline.rows import RowValidator
from pipeline.rules import Evaluation, RecordFacts, RulesConfig, evaluate, load_rules
from pipeline.sources.fields import build_mapping
from pipeline.sources.files import read_snapshot

records = table_of(Record)
RESULT_FIELDS = ("severity", "severity_source", "rule_set", "market_regulation", "period_start", "min_end",
                 "max_end", "repairable_from", "removal_on", "publish_by", "status", "status_reason")  # fmt: skip
FACT_COLUMNS = ("id", "decision_no", "authority", "entity_name", "uscc", "decision_date", "publication_date",
                "penalty_types", "penalty_content", "fine_amount", "severity_given", "violation_type", "facts",
                "basis", "industry", "department_code", "publish_until")  # fmt: skip
OUTPUT_FIELDS = ("decision_no", "authority", "entity_name", "uscc", "severity", "severity_source", "rule_set",
                 "period_start", "min_end", "max_end", "repairable_from", "removal_on", "publish_by",
                 "status", "reason")  # fmt: skip


@dataclass(frozen=True)
class Evaluator:
    """Rules, calendar and the market-regulation departments: all evaluation needs."""

    rules: RulesConfig
    calendar: WorkingCalendar
    market_departments: frozenset[str]

    @classmethod
    def from_config(cls, config: Config) -> Evaluator:
        markets = frozenset(d.code for d in config.departments.departments if d.market_regulation)
        return cls(load_rules(config), WorkingCalendar(load_holidays(config)), markets)

    def facts(self, row: Any) -> RecordFacts:
        return self._facts(*(row[k] for k in FACT_COLUMNS[1:]))

    def _facts(self, decision_no: Any, authority: Any, entity_name: Any, uscc: Any, decision_date: Any,
               publication_date: Any, penalty_types: Any, penalty_content: Any, fine_amount: Any,
               severity_given: Any, violation_type: Any, facts: Any, basis: Any, industry: Any,
               department_code: Any, publish_until: Any) -> RecordFacts:  # fmt: skip
        """`facts` from the values of FACT_COLUMNS[1:], in that order (the recompute's rows)."""
        return RecordFacts(
            decision_no=decision_no, authority=authority, entity_name=entity_name, uscc=uscc or "",
            decision_date=decision_date, publication_date=publication_date,
            penalty_types=tuple((penalty_types or "").split(";")), penalty_content=penalty_content or "",
            fine_amount_wan=_decimal(fine_amount), severity_given=severity_given,
            violation_type=violation_type or "", facts=facts or "", basis=basis or "",
            industry=industry or "", market_regulation=department_code in self.market_departments,
            publish_until=publish_until,
        )  # fmt: skip

    def columns(self, row: Any, today: dt.date) -> dict[str, Any]:
        """The eligibility columns of one record: results, or status error with the reason."""
        return dict(zip(RESULT_FIELDS, self._values(self.facts(row), today), strict=True))

    def _values(self, facts: RecordFacts, today: dt.date) -> tuple[Any, ...]:
        """`columns` as a tuple in RESULT_FIELDS order."""
        try:
            result = evaluate(facts, today, self.rules, self.calendar)
        except (ValueError, CalendarError) as exc:
            return (None, None, None, facts.market_regulation, None, None, None, None, None, None,
                    "error", str(exc))  # fmt: skip
        return _result_values(result, facts)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _result_values(result: Evaluation, facts: RecordFacts) -> tuple[Any, ...]:
    reason = result.reason + "".join(f"; warning: {w}" for w in result.warnings)
    return (result.severity, result.severity_source, result.rule_set, facts.market_regulation,
            result.period_start, result.min_end, result.max_end, result.repairable_from,
            result.removal_on, result.publish_by, result.status, reason)  # fmt: skip


# --------------------------------------------------------------------------- database


@dataclass
class Recompute:
    evaluated: int = 0
    changed: int = 0
    errors: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def recompute(engine: Engine, evaluator: Evaluator, today: dt.date, batch: int = 5000,
              progress: Callable[[int], None] | None = None) -> Recompute:  # fmt: skip
    """Re-evaluate every penalty record as of `today`; write back what changed."""
    result = Recompute()
    with engine.begin() as conn:
        for page in _pages(conn, batch):
            changes = [_changes(row, evaluator.columns(row, today), today) for row in page]
            _count(result, page, changes)
            _write(conn, [c for c in changes if c is not None])
            if progress:
                progress(result.evaluated)
    return result


def _pages(conn: Connection, batch: int) -> Iterator[list[Any]]:
    cols = [records.c[n] for n in (*FACT_COLUMNS, *RESULT_FIELDS, "evaluated_on")]
    last = 0
    while True:
        query = (
            select(*cols)
            .where(records.c.kind == "penalty", records.c.id > last)
            .order_by(records.c.id)
            .limit(batch)
        )
        page = list(conn.execute(query).mappings())
        if not page:
            return
        yield page
        last = page[-1]["id"]


def _changes(row: Any, new: dict[str, Any], today: dt.date) -> dict[str, Any] | None:
    if all(row[k] == new[k] for k in RESULT_FIELDS):
        return None
    return {**{f"v_{k}": v for k, v in new.items()}, "v_id": row["id"], "v_evaluated_on": today}


def _count(result: Recompute, page: list[Any], changes: list[dict[str, Any] | None]) -> None:
    for row, change in zip(page, changes, strict=True):
        status = change["v_status"] if change else row["status"]
        result.by_status[status] = result.by_status.get(status, 0) + 1
        result.errors += status == "error"
    result.evaluated += len(page)
    result.changed += sum(c is not None for c in changes)


def _write(conn: Connection, params: list[dict[str, Any]]) -> None:
    if not params:
        return
    values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in (*RESULT_FIELDS, "evaluated_on")}
    conn.execute(update(records).where(records.c.id == bindparam("v_id")).values(**values), params)


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
            yield {**{k: row[k] for k in OUTPUT_FIELDS if k != "reason"}, "reason": row["status_reason"],
                   "department": row["department_code"], "vanished_on": row["vanished_on"]}  # fmt: skip


# --------------------------------------------------------------------------- snapshot file


def evaluate_file(
    config: Config, evaluator: Evaluator, path: Path, today: dt.date
) -> Iterator[dict[str, Any]]:
    """Evaluate every row of a snapshot file, with no database; bad rows say why."""
    router = _NoScope(config.departments, config.settings.jurisdiction)
    with read_snapshot(path) as snapshot:
        mapping = build_mapping(snapshot.headers, "penalties")
        missing = mapping.describe_missing()
        if missing:
            from pipeline.errors import InputError

            raise InputError(f"{path}: the header lacks required column(s) {'; '.join(missing)}")
        validator = RowValidator("penalty", mapping, router)
        for raw in snapshot:
            outcome = validator.validate(raw)
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
    out.update(status="error", reason=reason)
    return out


def _output(row: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in ("decision_no", "authority", "entity_name", "uscc")}
    out.update({k: columns[k] for k in OUTPUT_FIELDS if k in columns})
    out["reason"] = columns["status_reason"]
    out["department"] = row.get("department_code")
    return out
