"""What the monthly report reads: periods, and the ledger as it stood at an instant.

A report covers a `Period` (a calendar month, or any span of days) and is computed
**as of** one instant: the end of the period's last day in the configured zone, or
``--now`` when that is earlier (the current month). Re-running a past month therefore
gives the same figures, because the ledger is rolled back to that instant:

Reconstructed as of the instant (from ``ledger_events``, which every ledger change
writes in the same transaction): each ledger field in `LEDGER_FIELDS` — progress,
willingness, planned date, closing (closed_on, close_reason), notification
(notified_at, notified_channel), receipt (receipt_confirmed_at), green channel, and
the free-text columns. A field's value at instant T is the ``old_value`` of its first
event after T, or the current value when no event came after T. Records first seen
after T's day are left out.

Derived as of the instant's day: a penalty's status (expired · repairable ·
in_min_period · non_repairable) from its stored repairable and removal dates;
``not_published``/``error``/unevaluated stay as stored.

Not reconstructed (current values are used): snapshot facts (entity name, USCC,
department routing, dates — sync overwrites them without events), the eligibility
dates themselves (recomputed with today's rules; only matters when rules.yaml changed
or selects by evaluation date), and outbox states (a message counts when it was
created by the instant, in the state it has now).
"""

from __future__ import annotations

import calendar as _monthcal
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, or_, select

from pipeline.config.notices import TOLD_KINDS
from pipeline.db.models import DepartmentReport, LedgerEvent, OutboxMessage, Record, table_of
from pipeline.errors import UsageError
from pipeline.monthly.kpis import Undelivered

records = table_of(Record)
events = table_of(LedgerEvent)
outbox = table_of(OutboxMessage)
dept_reports = table_of(DepartmentReport)


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    key: str
    """``2026-11`` for a month, ``2026-01-01..2026-12-31`` for a span (report_runs.period)."""
    start: dt.date
    end: dt.date
    monthly: bool

    @property
    def label(self) -> str:
        if self.monthly:
            return f"{self.start.year}年{self.start.month}月"
        return f"{cn(self.start)}至{cn(self.end)}"

    @property
    def slug(self) -> str:
        return self.key.replace("..", "_")


def cn(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def month_period(text: str) -> Period:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise UsageError(f"--month {text!r} is not a month YYYY-MM (e.g. 2026-11)")
    year, month = int(text[:4]), int(text[5:])
    last = _monthcal.monthrange(year, month)[1]
    return Period(text, dt.date(year, month, 1), dt.date(year, month, last), True)


def span_period(start: dt.date, end: dt.date) -> Period:
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    return Period(f"{start}..{end}", start, end, False)


def previous_month(today: dt.date) -> Period:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return month_period(f"{first.year:04d}-{first.month:02d}")


def shift_month(period: Period, months: int) -> Period:
    index = period.start.year * 12 + period.start.month - 1 + months
    return month_period(f"{index // 12:04d}-{index % 12 + 1:02d}")


def months_overlapping(period: Period) -> list[Period]:
    out, month = [], month_period(f"{period.start.year:04d}-{period.start.month:02d}")
    while month.start <= period.end:
        out.append(month)
        month = shift_month(month, 1)
    return out


@dataclass(frozen=True)
class AsOf:
    instant: dt.datetime
    """Aware; the ledger is rolled back to this instant."""
    day: dt.date
    """The business day the status and overdue rules are evaluated on (in the zone)."""


def as_of(period: Period, now: dt.datetime, tz: ZoneInfo) -> AsOf:
    """The end of the period's last day, or `now` when that comes first."""
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(0), tz)
    if now < end:
        return AsOf(now, now.astimezone(tz).date())
    return AsOf(end, period.end)


# --------------------------------------------------------------------------- reconstruction


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


LEDGER_FIELDS: dict[str, Callable[[str], Any]] = {
    "progress": int,
    "willingness": str,
    "planned_on": _date,
    "responsible": str,
    "remarks": str,
    "repair_effect": str,
    "closed_on": _date,
    "close_reason": str,
    "green_channel": lambda t: t == "True",
    "commitment_on": _date,
    "follow_up_on": _date,
    "notified_at": _datetime,
    "notified_channel": str,
    "receipt_confirmed_at": _datetime,
    "viewed_at": _datetime,
    "company_answer": str,
    "verify_reason": str,
    "overdue_display_since": _date,
    "notified_method": str,
}
"""The ledger fields rolled back from ``ledger_events``, with the parser of their text."""

FACT_COLUMNS = (
    "id",
    "kind",
    "department_code",
    "uscc",
    "entity_name",
    "decision_no",
    "authority",
    "legal_rep",
    "list_name",
    "status",
    "repairable_from",
    "removal_on",
    "first_seen_on",
    "decision_date",
)
COLUMNS = (*FACT_COLUMNS, *LEDGER_FIELDS)
Event = tuple[dt.datetime, str, str | None]
"""(at, field, old_value) of one ledger event."""


def status_on(row: dict[str, Any], day: dt.date) -> str | None:
    """A penalty's status on `day`, from its stored dates (same precedence as pipeline.domain.rules)."""
    status: str | None = row["status"]
    if row["kind"] != "penalty" or status in (None, "not_published", "error"):
        return status
    if row["removal_on"] is not None and day >= row["removal_on"]:
        return "expired"
    if row["repairable_from"] is None:
        return "non_repairable"
    return "repairable" if day >= row["repairable_from"] else "in_min_period"


def state_at(row: dict[str, Any], later: Sequence[Event], when: AsOf) -> dict[str, Any] | None:
    """The record as it stood at `when` (None: not yet known then).

    `later` holds the record's events after some instant at or before `when.instant`,
    in the order they were written.
    """
    if row["first_seen_on"] > when.day:
        return None
    state = dict(row)
    seen: set[str] = set()
    for at, name, old in later:
        if at > when.instant and name not in seen and name in LEDGER_FIELDS:
            seen.add(name)
            state[name] = None if old is None else LEDGER_FIELDS[name](old)
    state["status"] = status_on(state, when.day)
    return state


ORDER = ("kind desc", "department_code", "green_channel desc", "decision_date", "id")


def scan(
    conn: Connection, side: Connection, latest: dt.date, since: dt.datetime, chunk: int = 2000
) -> Iterator[tuple[dict[str, Any], list[Event]]]:
    """Every record first seen by `latest`, penalties then list entries, by department,
    green channel first, then decision date — each with its ledger events after `since`.

    Streams (server-side cursor on PostgreSQL); events are fetched per chunk of records
    on the `side` connection, so memory stays flat whatever the ledger's size.
    """
    r = records.c
    query = (
        select(*(r[c] for c in COLUMNS))
        .where(r.first_seen_on <= latest)
        .order_by(r.kind.desc(), r.department_code, r.green_channel.desc(), r.decision_date, r.id)
    )
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
    for part in result.mappings().partitions(chunk):
        rows = [dict(row) for row in part]
        later = _events_after(side, [row["id"] for row in rows], since)
        for row in rows:
            yield row, later.get(row["id"], [])


def _events_after(conn: Connection, ids: list[int], since: dt.datetime) -> dict[int, list[Event]]:
    e = events.c
    query = (
        select(e.record_id, e.at, e.field, e.old_value)
        .where(e.record_id.in_(ids), e.at > since)
        .order_by(e.id)
    )
    out: dict[int, list[Event]] = defaultdict(list)
    for record_id, at, name, old in conn.execute(query):
        out[record_id].append((at, name, old))
    return out


# --------------------------------------------------------------------------- side tables


def delivery_problems(conn: Connection, when: AsOf) -> dict[str, dict[str, int]]:
    """Notices to companies in state unknown / failed, created by `when`, per department."""
    c = outbox.c
    query = (
        select(c.department_code, c.state, func.count())
        .where(
            c.record_id.is_not(None),
            c.state.in_(("unknown", "failed")),
            c.created_at <= when.instant,
        )
        .group_by(c.department_code, c.state)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for code, state, n in conn.execute(query):
        out[code or ""][state] = int(n)
    return out


def undelivered(conn: Connection, when: AsOf) -> Undelivered:
    """Records whose notice, created by `when`, was only written to a file or is a manual task."""
    c = outbox.c
    query = select(c.record_id, c.channel, c.state).where(
        c.record_id.is_not(None),
        c.kind.in_(TOLD_KINDS),
        c.created_at <= when.instant,
        or_(c.state == "written", and_(c.channel == "manual", c.state == "sent")),
    )
    files: set[int] = set()
    manual: set[int] = set()
    for record_id, channel, state in conn.execute(query):
        (manual if channel == "manual" and state == "sent" else files).add(record_id)
    return Undelivered(frozenset(files), frozenset(manual))


def department_reports(conn: Connection, period: Period, when: AsOf) -> dict[str, dict[str, Any]]:
    """Per department: its reports (imported ledgers) received in the period, and the last."""
    c = dept_reports.c
    query = (
        select(c.department_code, c.received_at)
        .where(c.received_at <= when.instant)
        .order_by(c.received_at)
    )
    start = dt.datetime.combine(period.start, dt.time(0), when.instant.tzinfo)
    out: dict[str, dict[str, Any]] = {}
    for code, received in conn.execute(query):
        item = out.setdefault(code, {"in_period": 0, "last": None})
        item["in_period"] += received >= start
        item["last"] = received
    return out
