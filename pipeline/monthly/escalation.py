"""The monthly cycle's reminders and escalations ("月报告", by the 20th).

On the reminder day each department contact gets one digest of its open cases with a
request to update the ledger. By the 20th the ladder runs, like a dunning policy:

    level 1  the department contact
    level 2  the department head
    level 3  the bureau (区营商环境局)

What escalates: a department that has not reported this month (no ledger import), a
case repairable and willing but not applied for within N days, a case past its planned
completion date, a notice undelivered or of unknown outcome. Each subject moves up at
most one level a month; the (subject, level, month) row is unique, so a re-run changes
nothing. Each recipient gets one digest a month through the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from pipeline.config import Config, Department, Person
from pipeline.config.notices import NoticesConfig
from pipeline.db.locks import write_lock
from pipeline.db.models import DepartmentReport, Escalation, OutboxMessage, Record, table_of
from pipeline.notices.context import department_view, record_view
from pipeline.notices.outbox import Planned, enqueue, message_key
from pipeline.notices.planner import Planner

records = table_of(Record)
escalations = table_of(Escalation)
reports = table_of(DepartmentReport)
outbox = table_of(OutboxMessage)
REASON_TEXT = {
    "not_reported": "本月未报送台账",
    "stuck": "可修复且有意愿但未申请",
    "past_planned": "超过计划完成修复时间",
    "undelivered": "告知书未送达或送达结果未知",
}
ROLE_TITLE = {1: "部门联系人", 2: "部门负责人", 3: "区营商环境局"}


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class Subject:
    kind: str  # record | department
    key: str  # record id or department code
    department_code: str
    reason: str
    detail: str = ""
    record: dict[str, Any] | None = None


@dataclass
class EscalationResult:
    month: str
    found: dict[str, int] = field(default_factory=dict)
    escalated: int = 0
    already_this_month: int = 0
    by_level: dict[str, int] = field(default_factory=dict)
    digests: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --------------------------------------------------------------------------- what is due


def find_subjects(
    conn: Connection, config: Config, notices: NoticesConfig, month: str, today: dt.date
) -> list[Subject]:
    wanted: set[str] = set(notices.escalation.reasons)
    found: list[Subject] = []
    if "not_reported" in wanted:
        found += _not_reported(conn, config, month)
    open_rows = [
        dict(r)
        for r in conn.execute(select(records).where(records.c.closed_on.is_(None))).mappings()
    ]
    stuck_days = notices.escalation.stuck_after_days
    for row in open_rows:
        reason = _case_reason(row, today, stuck_days, wanted)
        if reason:
            found.append(
                Subject("record", str(row["id"]), row["department_code"], reason[0], reason[1], row)
            )
    if "undelivered" in wanted:
        found += _undelivered(conn, {r["id"]: r for r in open_rows})
    return _one_per_subject(found)


def _not_reported(conn: Connection, config: Config, month: str) -> list[Subject]:
    """Departments asked to report (a monthly reminder by this month) that have not reported.

    A department never asked is not late: its first reminder precedes its first escalation.
    """
    reported = set(
        conn.execute(select(reports.c.department_code).where(reports.c.month == month)).scalars()
    )
    c = outbox.c
    asked = set(
        conn.execute(
            select(c.department_code)
            .where(c.kind == "department_reminder", c.occurrence <= month)
            .distinct()
        ).scalars()
    )
    return [
        Subject("department", d.code, d.code, "not_reported")
        for d in config.departments.departments
        if not d.bureau and d.code not in reported and d.code in asked
    ]


def _case_reason(
    row: dict[str, Any], today: dt.date, stuck_days: int, wanted: set[str]
) -> tuple[str, str] | None:
    start, planned = row["repairable_from"], row["planned_on"]
    if "past_planned" in wanted and planned is not None and planned < today and row["progress"] < 4:
        return "past_planned", f"计划{planned.isoformat()}完成"
    if (
        "stuck" in wanted
        and row["status"] == "repairable"
        and row["willingness"] == "yes"
        and row["progress"] < 3
        and start is not None
        and (today - start).days > stuck_days
    ):
        return "stuck", f"{start.isoformat()}起可修复，{(today - start).days}天未申请"
    return None


def _undelivered(conn: Connection, open_rows: dict[int, dict[str, Any]]) -> list[Subject]:
    c = outbox.c
    query = select(c.record_id, c.state).where(
        c.state.in_(("unknown", "failed")), c.kind.in_(("repair_notice", "list_notice"))
    )
    out = []
    for record_id, state in conn.execute(query):
        row = open_rows.get(record_id)
        if row is not None and row["progress"] == 0:
            detail = "发送结果未知，需人工核实" if state == "unknown" else "发送失败"
            out.append(
                Subject(
                    "record", str(record_id), row["department_code"], "undelivered", detail, row
                )
            )
    return out


def _one_per_subject(found: list[Subject]) -> list[Subject]:
    seen: dict[tuple[str, str], Subject] = {}
    for subject in found:
        seen.setdefault((subject.kind, subject.key), subject)
    return list(seen.values())


# --------------------------------------------------------------------------- the ladder


def next_level(conn: Connection, subject: Subject, month: str, max_level: int) -> tuple[int, bool]:
    """(level this month, already escalated this month)."""
    e = escalations.c
    rows = conn.execute(
        select(e.month, func.max(e.level))
        .where(e.subject_kind == subject.kind, e.subject == subject.key)
        .group_by(e.month)
    ).all()
    this_month = [level for m, level in rows if m == month]
    if this_month:
        return max(this_month), True
    before = [level for m, level in rows if m < month]
    return min((max(before) if before else 0) + 1, max_level), False


def escalate(
    engine: Engine,
    config: Config,
    planner: Planner,
    month: str,
    today: dt.date,
    now: dt.datetime,
    dry_run: bool = False,
) -> EscalationResult:
    notices = planner.notices
    result = EscalationResult(month)
    with engine.connect() as conn:
        transaction = conn.begin()
        write_lock(conn, "escalate")
        subjects = find_subjects(conn, config, notices, month, today)
        digest: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
        for subject in subjects:
            result.found[subject.reason] = result.found.get(subject.reason, 0) + 1
            level, done = next_level(conn, subject, month, notices.escalation.max_level)
            if done:
                result.already_this_month += 1
            else:
                conn.execute(
                    insert(escalations),
                    {
                        "month": month,
                        "subject_kind": subject.kind,
                        "subject": subject.key,
                        "department_code": subject.department_code,
                        "level": level,
                        "reason": subject.reason,
                        "created_at": now,
                    },
                )
                result.escalated += 1
            result.by_level[str(level)] = result.by_level.get(str(level), 0) + 1
            item = _item(config, subject, level)
            result.items.append(item)
            digest[(level, subject.department_code if level < 3 else "")].append(item)
        planned = [
            p
            for p in (
                _digest(config, planner, key, items, month, today)
                for key, items in sorted(digest.items())
            )
            if p
        ]
        result.digests = enqueue(conn, planned, now)
        transaction.rollback() if dry_run else transaction.commit()
    return result


def _item(config: Config, subject: Subject, level: int) -> dict[str, Any]:
    dep = config.department(subject.department_code) or config.departments.bureau
    view = record_view(subject.record) if subject.record else {}
    return {
        "subject_kind": subject.kind,
        "subject": subject.key,
        "department_code": dep.code,
        "department_name": dep.name,
        "reason": subject.reason,
        "reason_text": REASON_TEXT[subject.reason],
        "detail": subject.detail,
        "level": level,
        "entity_name": view.get("entity_name"),
        "decision_no": view.get("decision_no"),
        "green_channel": bool(view.get("green_channel")),
    }


def _recipient(config: Config, level: int, code: str) -> tuple[Person, str, Department]:
    if level >= 3:
        bureau = config.departments.bureau
        return bureau.contact, ROLE_TITLE[3], bureau
    dep = config.department(code) or config.departments.bureau
    return (dep.contact if level == 1 else dep.head), ROLE_TITLE[level], dep


def _digest(
    config: Config,
    planner: Planner,
    key: tuple[int, str],
    items: list[dict[str, Any]],
    month: str,
    today: dt.date,
) -> Planned | None:
    level, code = key
    person, role, dep = _recipient(config, level, code)
    if not person.email:
        return None
    items.sort(
        key=lambda i: (
            not i["green_channel"],
            i["department_code"],
            i["reason"],
            i["decision_no"] or "",
        )
    )
    context = {
        "items": items,
        "level": level,
        "month": month,
        "today": today,
        "issuer": planner.notices.issuer,
        "recipient_title": f"{dep.name}{role}" if level < 3 else role,
        "department": department_view(dep),
        "sign_name": config.settings.sms.sign_name,
    }
    settings = planner.notices.kind("escalation")
    return Planned(
        message_key("escalation", f"L{level}-{dep.code}", month, "email", person.email),
        "escalation",
        month,
        "email",
        person.email,
        person.name,
        None,
        dep.code,
        planner.payload("escalation", context, settings),
    )


# --------------------------------------------------------------------------- the reminder day


@dataclass(frozen=True)
class ReminderResult:
    month: str
    departments: int
    """Departments with open cases and a contact e-mail: one digest each."""
    planned: int
    """Digests newly put in the outbox (a re-run plans none again)."""

    def as_json(self) -> dict[str, Any]:
        return {"month": self.month, "departments": self.departments, "planned": self.planned}


def department_reminders(
    engine: Engine,
    config: Config,
    planner: Planner,
    month: str,
    today: dt.date,
    deadline: dt.date,
    now: dt.datetime,
    dry_run: bool = False,
) -> ReminderResult:
    """One digest per department contact: its open cases, please update the ledger."""
    settings = planner.notices.kind("department_reminder")
    planned = []
    with engine.connect() as conn:
        transaction = conn.begin()
        write_lock(conn, "department reminders")
        by_dep: dict[str, list[dict[str, Any]]] = defaultdict(list)
        query = (
            select(records)
            .where(records.c.closed_on.is_(None))
            .order_by(records.c.green_channel.desc(), records.c.id)
        )
        for row in conn.execute(query).mappings():
            if row["kind"] == "list" or row["status"] in (
                "in_min_period",
                "repairable",
                "non_repairable",
            ):
                by_dep[row["department_code"]].append(record_view(row))
        for code, cases in sorted(by_dep.items()):
            dep = config.department(code) or config.departments.bureau
            if not settings.enabled or not dep.contact.email:
                continue
            context = {
                "cases": cases,
                "department": department_view(dep),
                "month": month,
                "deadline": deadline,
                "today": today,
                "issuer": planner.notices.issuer,
                "sign_name": config.settings.sms.sign_name,
            }
            planned.append(
                Planned(
                    message_key(
                        "department_reminder", f"dept-{code}", month, "email", dep.contact.email
                    ),
                    "department_reminder",
                    month,
                    "email",
                    dep.contact.email,
                    dep.contact.name,
                    None,
                    code,
                    planner.payload("department_reminder", context, settings),
                )
            )
        new = enqueue(conn, planned, now)
        transaction.rollback() if dry_run else transaction.commit()
    return ReminderResult(month, len(planned), new)
