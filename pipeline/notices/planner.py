"""What notice is due for whom, today: the planner.

Pure planning (`due_occurrences`, `choose_channel`) decides; `plan_notices` reads the
ledger page by page, renders each message and enqueues it under its unique key, so a
re-run plans nothing twice. Rules:

- ``repair_notice`` (告知书): every published, open penalty never told — new ones on their
  first sync (处罚即告知) and the stock never notified (存量);
- ``eligibility_reminder``: N working days before the repairable date, and on it;
- ``follow_up``: repairable, not applied for, M days after — at most K times;
- ``list_notice``: every open severe-list entry never told (认定即告知);
- ``department_digest``: one message per department contact per day with its new and
  due cases.

Nothing is planned for records not published or expired, or for closed entries.

Everything a message needs is decided here, once: its text, HTML, SMS text and DOCX (in
the business zone's `today`), and the channels it falls back to when its own fails for
good (`payload["fallbacks"]`: the next channels of the kind's order the recipient has an
address for, each with its outbox key). A notice's content does not depend on its
channel, so a fallback row carries the same payload; the dispatcher only sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from pipeline.config import Config
from pipeline.config.notices import ChannelName, KindSettings, NoticesConfig
from pipeline.db.locks import write_lock
from pipeline.db.models import Contact, OutboxMessage, Record, table_of
from pipeline.domain.calendar import WorkingCalendar
from pipeline.errors import CalendarError
from pipeline.notices.context import department_view, notice_context, sms_params
from pipeline.notices.digest import PUBLISHED_OPEN, SECTIONS, Digest, listing_order
from pipeline.notices.docx import docx_payload
from pipeline.notices.outbox import NewLink, Planned, enqueue, message_key
from pipeline.notices.templating import Renderer, cn_date
from pipeline.office.xml import InvalidDocument
from pipeline.web.codes import code_hash, new_code

records = table_of(Record)
contacts = table_of(Contact)
outbox = table_of(OutboxMessage)
PAGE_SIZE = 200
"""Records planned per round trip. A page's messages are held until stored, each with its
DOCX (~50 kB of base64): 200 keep that to ~10 MB, and cost two queries per page."""


@dataclass(frozen=True)
class Occurrence:
    kind: str
    occurrence: str
    """Which time of this kind: 'initial', 'before:2026-12-29', 'on:2026-12-29', 'follow:1'."""
    phase: str = "initial"


def working_days_before(calendar: WorkingCalendar, day: dt.date, n: int) -> dt.date:
    for _ in range(n):
        day = calendar.previous_working_day(day)
    return day


def due_occurrences(
    row: Any,
    today: dt.date,
    kinds: dict[str, KindSettings],
    calendar: WorkingCalendar,
    gaps: list[str] | None = None,
) -> list[Occurrence]:
    """The notices a record is due today (whether already planned is checked later).

    A reminder date that falls in a year no working-day data covers is skipped and
    reported in `gaps` (fail closed: no guessed dates); the record's other notices go on.
    """
    if row["closed_on"] is not None or row.get("verify_reason"):
        return []  # closed, or gone from the snapshot (待核实): nothing to tell until confirmed
    if row["kind"] == "list":
        return (
            [Occurrence("list_notice", "initial")]
            if kinds["list_notice"].enabled and row["notified_at"] is None
            else []
        )
    if row["status"] not in PUBLISHED_OPEN:
        return []
    due = []
    if kinds["repair_notice"].enabled and row["notified_at"] is None:
        due.append(Occurrence("repair_notice", "initial"))
    try:
        due += _reminders(row, today, kinds["eligibility_reminder"], calendar)
    except CalendarError as exc:
        if gaps is not None:
            gaps.append(f"{row['decision_no']}: {exc}")
    due += _follow_ups(row, today, kinds["follow_up"])
    return due


def _reminders(
    row: Any, today: dt.date, kind: KindSettings, calendar: WorkingCalendar
) -> list[Occurrence]:
    start = row["repairable_from"]
    if not kind.enabled or start is None or row["progress"] >= 3 or _says_applied(row):
        return []
    if start <= today <= start + dt.timedelta(days=kind.grace_days):
        return [Occurrence("eligibility_reminder", f"on:{start}", "on")]
    if (
        kind.working_days_before
        and working_days_before(calendar, start, kind.working_days_before) <= today < start
    ):
        return [Occurrence("eligibility_reminder", f"before:{start}", "before")]
    return []


def _follow_ups(row: Any, today: dt.date, kind: KindSettings) -> list[Occurrence]:
    """The n-th follow-up, n = whole `after_days` periods since the repairable date (≤ max_times).

    Only once the company was told, and `after_days` after that: a company first told
    today (存量) must not get a "still not repaired?" the same day.
    """
    start, told = row["repairable_from"], row["notified_at"]
    if not kind.enabled or start is None or told is None or row["status"] != "repairable":
        return []
    if (
        row["progress"] >= 3
        or row["willingness"] == "no"
        or _says_applied(row)
        or (today - told.date()).days < kind.after_days
    ):
        return []
    n = min((today - start).days // kind.after_days, kind.max_times)
    return [Occurrence("follow_up", f"follow:{n}")] if n >= 1 else []


def _says_applied(row: Any) -> bool:
    """The company answered 已提交修复申请 on its page: no reminder until the ledger moves."""
    return bool(row.get("company_answer") == "applied")


def choose_channel(
    order: list[ChannelName], contact: dict[str, Any] | None
) -> tuple[ChannelName, str, str | None] | None:
    """The first channel in the kind's order the recipient has an address for."""
    for channel in order:
        if channel == "email" and contact and contact.get("email"):
            return channel, contact["email"], contact.get("contact_name")
        if channel == "sms" and contact and contact.get("phone"):
            return channel, contact["phone"], contact.get("contact_name")
        if channel == "manual":
            return channel, "responsible-person", None
    return None


def fallback_channels(
    order: list[ChannelName], channel: str, contact: dict[str, Any] | None
) -> list[tuple[ChannelName, str, str | None]]:
    """The channels after `channel` in the kind's order the recipient has an address for."""
    rest = order[order.index(channel) + 1 :] if channel in order else []
    return [chosen for c in rest if (chosen := choose_channel([c], contact)) is not None]


@dataclass
class PlanResult:
    considered: int = 0
    planned: int = 0
    already_planned: int = 0
    no_address: int = 0
    calendar_gaps: int = 0
    """Reminders not planned because their year has no working-day data (see holidays.yaml)."""
    invalid_documents: list[str] = field(default_factory=list)
    """Notices not planned because their rendered DOCX did not parse back (record: why);
    never expected, as the texts are cleaned first: a bug to report, not a notice to send."""
    by_kind: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    """With dry_run: what would be planned (kind, key, subject)."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


COMPANY_KINDS = ("repair_notice", "eligibility_reminder", "follow_up", "list_notice")
"""Notices to a company: each carries its answer link (when `web.public_base_url` is set)."""


class Planner:
    def __init__(
        self, config: Config, notices: NoticesConfig, renderer: Renderer, calendar: WorkingCalendar
    ) -> None:
        self.config, self.notices, self.renderer, self.calendar = (
            config,
            notices,
            renderer,
            calendar,
        )
        self.web = config.settings.web

    def message(
        self,
        row: Any,
        occ: Occurrence,
        contact: dict[str, Any] | None,
        today: dt.date,
        channel: ChannelName | None = None,
    ) -> Planned | None:
        """Render one notice for one record, on the first usable channel (or the one given)."""
        settings = self.notices.kind(occ.kind)
        order = [channel] if channel else settings.channels
        chosen = choose_channel(order, contact)
        if chosen is None:
            return None
        ch, recipient, name = chosen
        context = notice_context(self.config, self.notices, row, today, occ.phase)
        link = self._link(occ.kind, row, today, context)
        payload = self.payload(occ.kind, context, settings)
        payload["fallbacks"] = [
            {
                "key": message_key(occ.kind, str(row["id"]), occ.occurrence, c, to),
                "channel": c,
                "recipient": to,
                "recipient_name": to_name,
            }
            for c, to, to_name in fallback_channels(settings.channels, ch, contact)
        ]
        return Planned(
            key=message_key(occ.kind, str(row["id"]), occ.occurrence, ch, recipient),
            kind=occ.kind,
            occurrence=occ.occurrence,
            channel=ch,
            recipient=recipient,
            recipient_name=name,
            record_id=row["id"],
            department_code=row["department_code"],
            payload=payload,
            link=link,
        )

    def _link(self, kind: str, row: Any, today: dt.date, context: dict[str, Any]) -> NewLink | None:
        """A fresh answer link for a company's notice, put in `context` (when configured)."""
        base = self.web.public_base_url
        if base is None or kind not in COMPANY_KINDS or not row["id"]:
            return None
        code = new_code()
        context["link"] = {"url": f"{base}/r/{code}", "code": code}
        end = today + dt.timedelta(days=self.web.link_days)
        return NewLink(
            code_hash(code), dt.datetime.combine(end, dt.time(0), self.config.settings.tz)
        )

    def payload(self, kind: str, context: dict[str, Any], settings: KindSettings) -> dict[str, Any]:
        parts = {
            part: self.renderer.render(kind, part, context)
            for part in ("subject", "body.txt", "body.html", "sms.txt")
        }
        payload: dict[str, Any] = {
            "subject": parts["subject"],
            "text": parts["body.txt"],
            "html": parts["body.html"],
            "sms_text": parts["sms.txt"],
            "sms_template": kind,
            "sms_params": sms_params(context),
        }
        if settings.attach_docx and self.renderer.has(kind, "docx.txt"):
            payload["docx"] = docx_payload(
                context["record"]["entity_name"],
                self.renderer.render(kind, "docx.txt", context),
                context["issuer"],
                cn_date(context["today"]),  # the business day the planner was given
                (context.get("link") or {}).get("url"),
            )
        return payload


CALENDAR_WARNING_DAYS = 60
CALENDAR_ALONE_DAYS = 30


def calendar_warning(calendar: WorkingCalendar, today: dt.date) -> str | None:
    """The bureau's warning that working-day data runs out (from 60 days before)."""
    until = calendar.covered_until()
    if (until - today).days >= CALENDAR_WARNING_DAYS:
        return None
    return (
        f"工作日数据（config/holidays.yaml）截至{cn_date(until)}，请尽快补充{until.year + 1}年"
        "节假日安排（国务院办公厅通知）；此后的公示截止日期（publish_by）将无法计算。"
    )


def plan_notices(
    engine: Engine,
    planner: Planner,
    today: dt.date,
    now: dt.datetime,
    dry_run: bool = False,
    page_size: int = PAGE_SIZE,
) -> PlanResult:
    result = PlanResult()
    digest = Digest(planner.notices.kind("department_digest").max_cases)
    with engine.connect() as conn:
        transaction = conn.begin()
        write_lock(conn, "notices plan")
        for page in _open_records(conn, page_size):
            planned = _plan_page(conn, planner, page, today, result, digest)
            _store(conn, planned, now, dry_run, result)
        _store(conn, _digests(planner, digest, today, result), now, dry_run, result)
        if dry_run:
            transaction.rollback()  # --dry-run: report what would be planned, keep nothing
        else:
            transaction.commit()
    return result


def _open_records(conn: Connection, page_size: int) -> Iterator[list[dict[str, Any]]]:
    r = records.c
    last = 0
    while True:
        query = (
            select(records)
            .where(r.closed_on.is_(None), r.id > last)
            .order_by(r.id)
            .limit(page_size)
        )
        page = [dict(row) for row in conn.execute(query).mappings()]
        if not page:
            return
        yield page
        last = page[-1]["id"]


def _plan_page(
    conn: Connection,
    planner: Planner,
    page: list[dict[str, Any]],
    today: dt.date,
    result: PlanResult,
    digest: Digest,
) -> list[Planned]:
    kinds = planner.notices.kinds
    known = _planned_occurrences(conn, [row["id"] for row in page])
    people = _contacts(conn, {row["uscc"] for row in page if row["uscc"]})
    planned = []
    for row in page:
        result.considered += 1
        digest.collect(row, today)
        gaps: list[str] = []
        occurrences = due_occurrences(row, today, kinds, planner.calendar, gaps)
        result.calendar_gaps += len(gaps)
        for occ in occurrences:
            if (row["id"], occ.kind, occ.occurrence) in known:
                result.already_planned += 1
                continue
            try:
                message = planner.message(row, occ, people.get(row["uscc"] or ""), today)
            except InvalidDocument as exc:  # checked at plan time: never queued, never sent
                result.invalid_documents.append(f"record {row['id']} {row['decision_no']}: {exc}")
                continue
            if message is None:
                result.no_address += 1
            else:
                planned.append(message)
    return planned


def _planned_occurrences(conn: Connection, ids: list[int]) -> set[tuple[int, str, str]]:
    c = outbox.c
    rows = conn.execute(select(c.record_id, c.kind, c.occurrence).where(c.record_id.in_(ids)))
    return {(r[0], r[1], r[2]) for r in rows}


def _contacts(conn: Connection, usccs: set[str]) -> dict[str, dict[str, Any]]:
    c = contacts.c
    rows = conn.execute(
        select(contacts).where(c.uscc.in_(list(usccs)), c.valid_to.is_(None))
    ).mappings()
    return {row["uscc"]: dict(row) for row in rows}


def _digests(planner: Planner, digest: Digest, today: dt.date, result: PlanResult) -> list[Planned]:
    if not planner.notices.kind("department_digest").enabled:
        return []
    # From 60 days before the working-day data ends, the bureau's digest carries the warning;
    # from 30 days (when check-config fails too) the bureau gets a digest for it alone.
    if (planner.calendar.covered_until() - today).days < CALENDAR_ALONE_DAYS:
        digest.sections(planner.config.departments.bureau.code)
    out = []
    for code, sections in sorted(digest.departments.items()):
        cases = {name: section.listed() for name, section in sections.items()}
        totals = {name: section.total for name, section in sections.items()}
        message = digest_message(planner, code, cases, today, totals)
        if message is None:
            result.no_address += 1
        else:
            out.append(message)
    return out


def digest_message(
    planner: Planner,
    code: str,
    cases: dict[str, list[dict[str, Any]]],
    today: dt.date,
    totals: dict[str, int] | None = None,
) -> Planned | None:
    """One department contact's digest of its new and due cases (green channel first).

    `cases` are the cases listed per section, `totals` how many each section has (default:
    as many as listed); the templates print the totals and how many are not listed."""
    settings = planner.notices.kind("department_digest")
    dep = planner.config.department(code) or planner.config.departments.bureau
    person = {
        "email": dep.contact.email,
        "phone": dep.contact.phone,
        "contact_name": dep.contact.name,
    }
    chosen = choose_channel([c for c in settings.channels if c != "manual"], person)
    if chosen is None:
        return None
    channel, recipient, name = chosen
    for group in cases.values():
        group.sort(key=listing_order)
    cases = {**{name: [] for name in SECTIONS}, **cases}
    counted = {name: len(listed) for name, listed in cases.items()} | (totals or {})
    bureau = code == planner.config.departments.bureau.code
    context = {
        **cases,
        "totals": counted,
        "unlisted": {name: counted[name] - len(listed) for name, listed in cases.items()},
        "department": department_view(dep),
        "today": today,
        "issuer": planner.notices.issuer,
        "sign_name": planner.config.settings.sms.sign_name,
        "calendar_warning": calendar_warning(planner.calendar, today) if bureau else None,
    }
    key = message_key("department_digest", f"dept-{code}", today.isoformat(), channel, recipient)
    return Planned(
        key,
        "department_digest",
        today.isoformat(),
        channel,
        recipient,
        name,
        None,
        code,
        planner.payload("department_digest", context, settings),
    )


def _store(
    conn: Connection, planned: list[Planned], now: dt.datetime, dry_run: bool, result: PlanResult
) -> None:
    new = enqueue(conn, planned, now)
    result.planned += new
    for p in planned:
        result.by_kind[p.kind] = result.by_kind.get(p.kind, 0) + 1
        result.by_channel[p.channel] = result.by_channel.get(p.channel, 0) + 1
        if dry_run:
            result.messages.append(
                {
                    "key": p.key,
                    "kind": p.kind,
                    "channel": p.channel,
                    "subject": p.payload["subject"],
                }
            )
