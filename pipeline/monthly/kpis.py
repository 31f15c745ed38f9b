"""Monthly-report KPIs (月报告): pure aggregation over the ledger as of one instant.

Input is the stream of records as they stood at the report's instant
(`pipeline.monthly.data.state_at`); output is one KPI block per department and one
for the whole district. Definitions (D = the as-of day, normally the period's last):

- **in scope**: records first seen by D that are published penalties (status, as of D,
  anything but ``not_published``) or severe-list entries, and that were open at some
  time in the period: not closed, or closed on or after the period's first day.
  A record closed in an earlier period has left the campaign and is not counted.
- **entity**: a distinct USCC; a record without a USCC is its own entity. Department
  figures count the department's entities; the district total counts each entity once
  (so the total is not the sum of the departments when an entity has records in several).
- **告知率** (told rate) = entities with a delivered notice ÷ entities in scope. A notice
  is delivered when ``notified_at`` is set (by the instant) on a channel other than
  ``manual``, or ``receipt_confirmed_at`` is set (a manual delivery the company
  confirmed). An entity counts as told when at least one of its in-scope records is.
- **知晓率** (aware rate) = entities with ``receipt_confirmed_at`` on any in-scope
  record ÷ entities in scope. 知晓 is never assumed from a delivery: a person confirmed it
  (`ledger set --confirm-receipt`, a confirmed manual delivery) or the company answered on
  its page. **告知后知晓率** (``ack_rate``) = those entities ÷ entities told;
  **意愿率** (``willing_rate``) = entities aware and willing (修复意愿 是, from the company's
  answer or the department) ÷ entities aware; **已查看** (``entities_viewed``): entities
  that opened their answer page.
- **修复率** (repair rate) = repaired ÷ (willing and eligible), counted in records.
  Repaired: closed as ``repaired_early``, or progress 4 已完成 (penalty) / 4 已修复 or
  5 已移出 (list). Willing and eligible: willingness ``yes`` and — penalties — status
  ``repairable`` as of D; list entries are not evaluated by the pipeline (their removal
  conditions are the listing department's), so any willing list entry counts. A repaired
  record always counts in the denominator too (it evidently was willing and eligible),
  so the rate never exceeds 100 %.
- **逾期** (overdue): open records (not closed by D) with a planned completion date
  before D and progress below 4, or penalties repairable for more than N days
  (`overdue_days`, default 30) whose company is willing but has not applied (progress
  below 3). A record meeting both is counted once.
- **送达不明** (unknown delivery): notices to companies in the outbox in state
  ``unknown``, and **发送失败** those ``failed``, created by the instant, per department.
- **仅生成文件** (file only): records not told whose notice was only written to a file
  (no SMTP or SMS gateway configured: nobody received it). **待确认送达** (manual, not
  confirmed): records not told with a manual-delivery task — a person must deliver it and
  confirm (`ledger set --progress 1 --method ...`). Neither counts as told.
- **待核实** (to confirm): open penalties that left the snapshot before their removal date,
  not yet confirmed (repaired, revoked, data gap). **超期仍公示**: open penalties still
  shown past their maximum period (flagged after the grace days). Neither counts as
  repaired or closed until a person or the snapshot says so.
- **绿色通道**: in-scope records in the green channel.
- **动态调整** (ledger changes in the period): added (first seen in the period), and
  closed in the period by repair (``repaired_early``), by expiry (``expired``), by
  removal from a list (``removed``), or — confirmed by a person — as revoked (决定撤销),
  a data gap (数据缺失) or for another reason (其他).

A rate whose denominator is zero is ``None`` (shown as “—”): an empty month is an
honest empty report, not 0 % and not 100 %.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

OVERDUE_DAYS = 30
CLOSE_REASONS = {
    "repaired_early": "closed_repaired",
    "expired": "closed_expired",
    "removed": "closed_removed",
    "revoked": "closed_revoked",
    "data_gap": "closed_data_gap",
    "other": "closed_other",
}
COUNTS = (
    "records",
    "penalties",
    "list_entries",
    "open",
    "entities",
    "entities_told",
    "entities_aware",
    "willing_eligible",
    "repaired",
    "overdue",
    "green_channel",
    "added",
    "closed_repaired",
    "closed_expired",
    "closed_removed",
    "delivery_unknown",
    "delivery_failed",
    "to_confirm",
    "overdue_display",
    "closed_revoked",
    "closed_data_gap",
    "closed_other",
    "file_only",
    "manual_pending",
)
RATES = {
    "told_rate": ("entities_told", "entities"),
    "aware_rate": ("entities_aware", "entities"),
    "repair_rate": ("repaired", "willing_eligible"),
    "ack_rate": ("entities_aware", "entities_told"),
    "willing_rate": ("entities_willing", "entities_aware"),
}
KPI_NAMES = {
    "records": "在账记录",
    "penalties": "行政处罚",
    "list_entries": "严重失信名单",
    "open": "未销账",
    "entities": "市场主体",
    "entities_told": "已告知主体",
    "entities_aware": "已知晓主体",
    "entities_viewed": "已查看主体",
    "entities_willing": "有意愿主体",
    "ack_rate": "告知后知晓率",
    "willing_rate": "意愿率",
    "told_rate": "告知率",
    "aware_rate": "知晓率",
    "willing_eligible": "有意愿且可修复",
    "repaired": "已修复",
    "repair_rate": "修复率",
    "overdue": "逾期",
    "green_channel": "绿色通道",
    "added": "新增",
    "closed_repaired": "修复销账",
    "closed_expired": "到期销账",
    "closed_removed": "移出名单",
    "delivery_unknown": "送达不明",
    "delivery_failed": "发送失败",
    "to_confirm": "待核实",
    "overdue_display": "超期仍公示",
    "closed_revoked": "撤销销账",
    "closed_data_gap": "数据缺失销账",
    "closed_other": "其他销账",
    "file_only": "仅生成文件",
    "manual_pending": "待确认送达",
}


def rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def in_period(day: dt.date | None, start: dt.date, end: dt.date) -> bool:
    return day is not None and start <= day <= end


def is_repaired(state: dict[str, Any]) -> bool:
    return bool(state["close_reason"] == "repaired_early" or (state["progress"] or 0) >= 4)


def is_in_scope(state: dict[str, Any], start: dt.date) -> bool:
    if state["kind"] == "penalty" and state["status"] == "not_published":
        return False
    return state["closed_on"] is None or state["closed_on"] >= start


def is_told(state: dict[str, Any]) -> bool:
    return (state["notified_at"] is not None and state["notified_channel"] != "manual") or (
        state["receipt_confirmed_at"] is not None
    )


def is_overdue(state: dict[str, Any], day: dt.date, overdue_days: int) -> bool:
    if state["closed_on"] is not None:
        return False
    progress = state["progress"] or 0
    if state["planned_on"] is not None and state["planned_on"] < day and progress < 4:
        return True
    start = state["repairable_from"]
    return bool(
        state["kind"] == "penalty"
        and state["status"] == "repairable"
        and start is not None
        and state["willingness"] == "yes"
        and progress < 3
        and (day - start).days > overdue_days
    )


def is_willing_eligible(state: dict[str, Any]) -> bool:
    if is_repaired(state):
        return True
    eligible = state["kind"] == "list" or state["status"] == "repairable"
    return bool(eligible and state["willingness"] == "yes")


def change_of(state: dict[str, Any], start: dt.date, end: dt.date) -> list[str]:
    """The ledger changes (动态调整) this record made in [start, end]."""
    out = []
    if in_period(state["first_seen_on"], start, end):
        out.append("added")
    if in_period(state["closed_on"], start, end) and state["close_reason"] in CLOSE_REASONS:
        out.append(CLOSE_REASONS[state["close_reason"]])
    return out


def open_flags(state: dict[str, Any], day: dt.date) -> list[str]:
    """待核实 and 超期仍公示 as of `day` (open records only)."""
    if state["closed_on"] is not None:
        return []
    out = ["to_confirm"] if state["verify_reason"] else []
    since = state["overdue_display_since"]
    if since is not None and since <= day:
        out.append("overdue_display")
    return out


@dataclass(frozen=True)
class Undelivered:
    """Records with a notice that reached nobody yet, as of the instant (from the outbox)."""

    file_only: frozenset[int] = frozenset()
    """A notice only written to a file (no channel configured)."""
    manual: frozenset[int] = frozenset()
    """A manual-delivery task created."""


@dataclass
class Group:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    entities: set[str] = field(default_factory=set)
    told: set[str] = field(default_factory=set)
    aware: set[str] = field(default_factory=set)
    viewed: set[str] = field(default_factory=set)
    willing: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        counts = {
            **self.counts,
            "entities": len(self.entities),
            "entities_told": len(self.told),
            "entities_aware": len(self.aware),
            "entities_viewed": len(self.viewed),
            "entities_willing": len(self.willing),
        }
        return {**counts, **{k: rate(counts[n], counts[d]) for k, (n, d) in RATES.items()}}


@dataclass
class Kpis:
    """Accumulates in-scope records one at a time; memory: the entity keys only."""

    start: dt.date
    end: dt.date
    day: dt.date
    overdue_days: int = OVERDUE_DAYS
    by_department: bool = True
    """False: the district total only (what a trend point needs), at half the cost."""
    groups: dict[str, Group] = field(default_factory=dict)
    total: Group = field(default_factory=Group)
    undelivered: Undelivered = field(default_factory=Undelivered)

    def add(self, state: dict[str, Any]) -> bool:
        """Count one record as of the report's instant; False when it is out of scope."""
        if not is_in_scope(state, self.start):
            return False
        names = ["records", "penalties" if state["kind"] == "penalty" else "list_entries"]
        if state["closed_on"] is None:
            names.append("open")
        if is_willing_eligible(state):
            names.append("willing_eligible")
        if is_repaired(state):
            names.append("repaired")
        if is_overdue(state, self.day, self.overdue_days):
            names.append("overdue")
        if state["green_channel"]:
            names.append("green_channel")
        names += change_of(state, self.start, self.end)
        names += open_flags(state, self.day)
        entity = state["uscc"] or f"record:{state['id']}"
        told, aware = is_told(state), state["receipt_confirmed_at"] is not None
        if not told:
            names += self._undelivered(state["id"])
        targets = [self.total]
        if self.by_department:
            code = state["department_code"] or ""
            group = self.groups.get(code)
            if group is None:
                group = self.groups[code] = Group()
            targets.append(group)
        for g in targets:
            counts = g.counts
            for name in names:
                counts[name] += 1
            g.entities.add(entity)
            if told:
                g.told.add(entity)
            if aware:
                g.aware.add(entity)
            if state["viewed_at"] is not None:
                g.viewed.add(entity)
            if aware and state["willingness"] == "yes":
                g.willing.add(entity)
        return True

    def _undelivered(self, record_id: int) -> list[str]:
        out = ["file_only"] if record_id in self.undelivered.file_only else []
        return out + (["manual_pending"] if record_id in self.undelivered.manual else [])

    def result(
        self,
        departments: list[tuple[str, str]],
        delivery: dict[str, dict[str, int]],
        reports: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The KPI block: total and one entry per department (configured ones first)."""
        known = [code for code, _ in departments]
        names = dict(departments)
        codes = known + sorted(c for c in {*self.groups, *delivery} if c not in names)
        out = []
        for code in codes:
            block = (self.groups.get(code) or Group()).as_json()
            block.update(
                delivery_unknown=delivery.get(code, {}).get("unknown", 0),
                delivery_failed=delivery.get(code, {}).get("failed", 0),
            )
            got = (reports or {}).get(code) or {}
            out.append(
                {
                    "code": code,
                    "name": names.get(code) or code or "（未分配）",
                    **block,
                    "reports_received": got.get("in_period", 0),
                    "last_report_at": got.get("last"),
                }
            )
        total = self.total.as_json()
        total["delivery_unknown"] = sum(d.get("unknown", 0) for d in delivery.values())
        total["delivery_failed"] = sum(d.get("failed", 0) for d in delivery.values())
        return {"total": total, "departments": out}
