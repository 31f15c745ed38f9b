"""修复受限: facts about other records that may keep a company from repairing one penalty.

A restriction is a flag with the reason a person reads — never a status and never a
decision: the five statuses keep their meaning, and whether repair is refused is for the
credit site and the department. Three kinds (rules.yaml `restrictions`, per rule set
`repeat_offender_*`):

- ``severe_list``: the entity is on a severe-dishonesty list entry that is still open;
- ``same_violation``: the entity has another penalty of the same violation type decided
  within `same_violation_window_months` of this one;
- ``repeat_offender``: the rule set bars repair for an entity penalised again (36号令):
  another penalty decided within `repeat_offender_years` before this one — or, when the
  years are unknown (null), any earlier penalty, flagged for a person to check.

Also here: the severe lists' own dates (附件4 可修复时间) from rules.yaml `lists`.

`restrictions_for` is pure; `apply_restrictions` and `apply_list_dates` write the
changed rows (evaluator output: no audit events, like the status).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from pipeline.config.rules import RulesConfig
from pipeline.db.locks import write_lock
from pipeline.db.models import Record, table_of
from pipeline.domain.periods import add_months

records = table_of(Record)
CHUNK = 500

CODES = {
    "severe_list": "列入严重失信主体名单",
    "same_violation": "同类违法行为另有处罚",
    "repeat_offender": "再次受到行政处罚",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """What a restriction reads of one record of the entity."""

    id: int
    kind: str
    decision_no: str
    authority: str
    decision_date: dt.date
    violation_type: str | None
    rule_set: str | None
    list_name: str | None
    open: bool
    """Not closed and still in the snapshot."""


def restrictions_for(
    record: Entry, others: Iterable[Entry], rules: RulesConfig
) -> list[dict[str, str]]:
    """The restrictions on `record` (a penalty), given the entity's other records."""
    others = [o for o in others if o.id != record.id]
    found = _severe_lists(others, rules) + _same_violation(record, others, rules)
    return found + _repeat(record, others, rules)


def _severe_lists(others: list[Entry], rules: RulesConfig) -> list[dict[str, str]]:
    if not rules.restrictions.severe_list:
        return []
    return [
        _item(
            "severe_list",
            f"{CODES['severe_list']}：{o.list_name or '（名单名称未知）'}"
            f"（{o.authority}，{o.decision_date.isoformat()}列入，{o.decision_no}）",
        )
        for o in others
        if o.kind == "list" and o.open
    ]


def _same_violation(record: Entry, others: list[Entry], rules: RulesConfig) -> list[dict[str, str]]:
    months = rules.restrictions.same_violation_window_months
    kind = (record.violation_type or "").strip()
    if months is None or not kind:
        return []
    return [
        _item(
            "same_violation",
            f"{CODES['same_violation']}：{o.decision_no}（{o.authority}，"
            f"{o.decision_date.isoformat()}），违法行为类型“{kind}”",
        )
        for o in others
        if o.kind == "penalty"
        and (o.violation_type or "").strip() == kind
        and _within(record.decision_date, o.decision_date, months)
    ]


def _repeat(record: Entry, others: list[Entry], rules: RulesConfig) -> list[dict[str, str]]:
    rule_set = rules.rule_sets.get(record.rule_set or "")
    if rule_set is None or not rule_set.repeat_offender_bar:
        return []
    years = rule_set.repeat_offender_years
    earlier = [
        o
        for o in others
        if o.kind == "penalty"
        and o.decision_date < record.decision_date
        and (years is None or record.decision_date <= add_months(o.decision_date, 12 * years))
    ]
    if not earlier:
        return []
    first = min(earlier, key=lambda o: o.decision_date)
    span = f"{years}年内" if years else "此前（年限未配置：repeat_offender_years，请人工核实）"
    return [
        _item(
            "repeat_offender",
            f"{span}{CODES['repeat_offender']}：{first.decision_no}"
            f"（{first.authority}，{first.decision_date.isoformat()}）"
            + (f"等{len(earlier)}件" if len(earlier) > 1 else ""),
        )
    ]


def _within(a: dt.date, b: dt.date, months: int) -> bool:
    early, late = min(a, b), max(a, b)
    return late <= add_months(early, months)


def _item(code: str, reason: str) -> dict[str, str]:
    return {"code": code, "reason": reason}


# --------------------------------------------------------------------------- database


def apply_restrictions(engine: Engine, rules: RulesConfig) -> int:
    """Recompute the restrictions of every open penalty; write the changed ones."""
    changed: list[dict[str, Any]] = []
    with engine.begin() as conn:
        write_lock(conn, "evaluate (restrictions)")
        flagged = _flagged(conn)
        for group in _groups(conn):
            for entry in group:
                if entry.kind != "penalty" or not entry.open:
                    continue
                new = restrictions_for(entry, group, rules) or None
                if new != flagged.pop(entry.id, None):
                    changed.append({"b_id": entry.id, "b_value": new})
        changed += [{"b_id": i, "b_value": None} for i in flagged]  # no longer restricted
        if changed:
            conn.execute(
                update(records)
                .where(records.c.id == bindparam("b_id"))
                .values(restrictions=bindparam("b_value")),
                changed,
            )
    return len(changed)


def _flagged(conn: Connection) -> dict[int, Any]:
    r = records.c
    query = select(r.id, r.restrictions).where(r.restrictions.is_not(None))
    return {i: value for i, value in conn.execute(query) if value}


def _groups(conn: Connection) -> Iterator[list[Entry]]:
    """The records of every entity (USCC) that has more than one, entity by entity."""
    r = records.c
    usccs = [
        u
        for (u,) in conn.execute(
            select(r.uscc).where(r.uscc.is_not(None)).group_by(r.uscc).having(func.count() > 1)
        )
    ]
    cols = (
        r.id,
        r.kind,
        r.decision_no,
        r.authority,
        r.decision_date,
        r.violation_type,
        r.rule_set,
        r.list_name,
        r.closed_on,
        r.vanished_on,
        r.uscc,
    )
    for i in range(0, len(usccs), CHUNK):
        by_entity: dict[str, list[Entry]] = defaultdict(list)
        for row in conn.execute(select(*cols).where(r.uscc.in_(usccs[i : i + CHUNK]))):
            open_ = row.closed_on is None and row.vanished_on is None
            by_entity[row.uscc].append(Entry(*row[:8], open=open_))
        yield from by_entity.values()


def apply_list_dates(engine: Engine, rules: RulesConfig) -> int:
    """附件4 可修复时间 and removal of list entries whose list has periods in rules.yaml.

    Lists without a rule are left alone: the department fills the date in the export.
    """
    r = records.c
    changed = []
    with engine.begin() as conn:
        write_lock(conn, "evaluate (list dates)")
        query = select(r.id, r.list_name, r.decision_date, r.repairable_from, r.removal_on).where(
            r.kind == "list", r.list_name.in_(list(rules.lists))
        )
        for id_, name, listed, start, removal in conn.execute(query):
            rule = rules.lists[name]
            new_start = _after(listed, rule.earliest_removal_months)
            new_removal = _after(listed, rule.removal_months)
            if (new_start, new_removal) != (start, removal):
                changed.append({"b_id": id_, "b_start": new_start, "b_removal": new_removal})
        if changed:
            conn.execute(
                update(records)
                .where(r.id == bindparam("b_id"))
                .values(repairable_from=bindparam("b_start"), removal_on=bindparam("b_removal")),
                changed,
            )
    return len(changed)


def _after(listed: dt.date, months: int | None) -> dt.date | None:
    """The day after an N-month period from the listing date (N=0: the listing date)."""
    if months is None:
        return None
    return listed if months == 0 else add_months(listed, months) + dt.timedelta(days=1)
