"""Build one report (month or span): scan once, write the workbook and HTML, record, send.

One streamed pass over the ledger feeds, for each record as it stood at the report's
instant, the KPI accumulator and the workbook's ledger and change sheets; the same pass
also recomputes the KPIs of any trend month that has no stored run (a month's stored
KPIs are reused only when they were computed as of that month's end). The run is
recorded in ``report_runs`` (one row per period: re-running rewrites the files and the
KPIs) and the summary is enqueued in the outbox for the bureau's contact and head and
each department's contact — once per period, again only with ``resend``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from pipeline.config import Config
from pipeline.db.models import ReportRun, table_of
from pipeline.logs import get_logger
from pipeline.monthly.data import (
    AsOf,
    Period,
    as_of,
    delivery_problems,
    department_reports,
    months_overlapping,
    scan,
    shift_month,
    state_at,
    undelivered,
)
from pipeline.monthly.html import ReportRenderer, context
from pipeline.monthly.kpis import OVERDUE_DAYS, Kpis, change_of
from pipeline.monthly.xlsx import ReportWorkbook
from pipeline.notices.outbox import Planned, enqueue, message_key
from pipeline.notices.templating import template_dirs

report_runs = table_of(ReportRun)
log = get_logger("report")
KIND = "monthly_report"
TREND_MONTHS = 12
MAX_SPAN_MONTHS = 36


@dataclass(frozen=True)
class ReportRequest:
    period: Period
    now: dt.datetime
    out_dir: Path
    send: bool = True
    resend: bool = False
    overdue_days: int = OVERDUE_DAYS
    write_only: bool = True
    """False: openpyxl's normal mode (the benchmark's baseline)."""


@dataclass(frozen=True)
class ReportResult:
    kpis: dict[str, Any]
    """As stored in ``report_runs.kpis``: period, from, to, as_of, then total, departments, ..."""
    trend: list[dict[str, Any]]
    files: dict[str, str]
    """{"xlsx": path, "html": path}"""
    sent: int
    send: str
    """sent, resent, already_sent, not_requested or empty_not_sent (no records, and
    notices.yaml kinds.monthly_report.send_empty is off)"""
    rows: dict[str, int]
    """Rows written to the workbook's sheets: annex3, annex4, changes."""

    @property
    def period(self) -> str:
        return str(self.kpis["period"])

    @property
    def as_of(self) -> str:
        return str(self.kpis["as_of"])

    @property
    def total(self) -> dict[str, Any]:
        """The whole district's KPIs (records, told_rate, aware_rate, repair_rate, overdue, ...)."""
        total: dict[str, Any] = self.kpis["total"]
        return total

    def as_json(self) -> dict[str, Any]:
        return {
            **self.kpis,
            "trend": self.trend,
            "files": self.files,
            "sent": self.sent,
            "send": self.send,
            "rows": self.rows,
        }


def trend_months(period: Period) -> list[Period]:
    """Monthly: the 12 months before it and itself; a span: its months (the last 36)."""
    if period.monthly:
        return [shift_month(period, -n) for n in range(TREND_MONTHS, 0, -1)] + [period]
    return months_overlapping(period)[-MAX_SPAN_MONTHS:]


def notes(overdue_days: int, when: AsOf, tz: Any) -> list[str]:
    local = when.instant.astimezone(tz)
    return [
        "口径：告知率 = 已送达告知书的市场主体 ÷ 在账市场主体；知晓率 = 已确认签收（知晓）的市场主体 ÷ 在账市场主体；"
        "修复率 = 已修复记录 ÷ 有修复意愿且可修复的记录（已修复的计入分母）。",
        f"逾期：计划完成修复时间已过仍未完成，或可修复超过{overdue_days}天、企业有意愿但尚未申请。"
        "送达不明 / 发送失败：告知书在发件箱中状态为 unknown / failed。“—”表示基数为零。",
        f"数据截至 {local:%Y-%m-%d %H:%M}（{local.tzname()}），台账进展按变更记录还原到该时点。",
    ]


def build_report(
    engine: Engine,
    config: Config,
    req: ReportRequest,
    progress: Callable[[int], None] | None = None,
) -> ReportResult:
    tz = config.settings.tz
    main = as_of(req.period, req.now, tz)
    departments = [(d.code, d.name) for d in config.departments.departments]
    names = dict(departments)
    title = req.period.label + ("" if req.period.monthly else "阶段")
    as_of_text = f"{main.day.year}年{main.day.month}月{main.day.day}日"
    book = ReportWorkbook(names, title, as_of_text, req.write_only)
    kpis = Kpis(req.period.start, req.period.end, main.day, req.overdue_days)
    with engine.connect() as conn, engine.connect() as side:
        stored = _stored(conn, [m.key for m in trend_months(req.period)])
        months = [m for m in trend_months(req.period) if m.key != req.period.key]
        plan = _trend_plan(months, stored, req.now, tz)
        todo = [
            (m, when, Kpis(m.start, m.end, when.day, req.overdue_days, by_department=False))
            for m, when in plan
            if when is not None
        ]
        kpis.undelivered = undelivered(conn, main)
        for _, when, k in todo:
            k.undelivered = undelivered(conn, when)
        instants = [main, *(when for _, when, _ in todo)]
        since = min(w.instant for w in instants)
        for n, (row, later) in enumerate(scan(conn, side, max(w.day for w in instants), since)):
            if progress is not None and n % 1000 == 0:
                progress(n)
            state = state_at(row, later, main)
            if state is not None and kpis.add(state):
                if state["closed_on"] is None:
                    book.ledger_row(state)
                for change in change_of(state, req.period.start, req.period.end):
                    book.change_row(state, change)
            for _, when, k in todo:
                past = state_at(row, later, when)
                if past is not None:
                    k.add(past)
        result = kpis.result(
            departments, delivery_problems(conn, main), department_reports(conn, req.period, main)
        )
        computed = {m.key: k.result(departments, delivery_problems(conn, w)) for m, w, k in todo}
    trend = [
        _point(m.key, computed[m.key], "recomputed")
        if when
        else _point(m.key, stored[m.key], "stored")
        for m, when in plan
    ]
    if req.period.monthly:
        trend.append(_point(req.period.key, result, "this report"))
    lines = notes(req.overdue_days, main, tz)
    slug = req.period.slug
    files = {
        "xlsx": str(req.out_dir / f"credit-repair-report-{slug}.xlsx"),
        "html": str(req.out_dir / f"credit-repair-report-{slug}.html"),
    }
    book.finish(result, trend, lines, Path(files["xlsx"]))
    renderer = ReportRenderer(template_dirs(config))
    base = {
        "kpis": result,
        "trend": trend,
        "title": title,
        "as_of_text": as_of_text,
        "notes": lines,
        "issuer": config.departments.bureau.name,
        "sign_name": config.settings.sms.sign_name,
        "xlsx_name": Path(files["xlsx"]).name,
    }
    _write_text(Path(files["html"]), renderer.render("body.html", _ctx(base)))
    kpi_json = _jsonable(
        {
            "period": req.period.key,
            "from": req.period.start,
            "to": req.period.end,
            "as_of": main.instant.isoformat(),
            **result,
        }
    )
    with engine.begin() as conn:
        sent, how = _record_and_send(conn, config, req, files, kpi_json, renderer, base)
    rows = {"annex3": book.n3, "annex4": book.n4, "changes": book.n_changes}
    return ReportResult(kpi_json, trend, files, sent, how, rows)


def _ctx(
    base: dict[str, Any], department: str | None = None, greeting: str = "各位同事"
) -> dict[str, Any]:
    return context(
        base["kpis"],
        base["trend"],
        title=base["title"],
        as_of_text=base["as_of_text"],
        issuer=base["issuer"],
        sign_name=base["sign_name"],
        notes=base["notes"],
        xlsx_name=base["xlsx_name"],
        department=department,
        greeting=greeting,
    )


def _stored(conn: Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    c = report_runs.c
    rows = conn.execute(select(c.period, c.kpis).where(c.period.in_(keys)))
    return {period: kpis for period, kpis in rows if kpis}


def _trend_plan(
    months: list[Period], stored: dict[str, dict[str, Any]], now: dt.datetime, tz: Any
) -> list[tuple[Period, AsOf | None]]:
    """Each trend month with the instant to recompute it at, or None when stored KPIs fit."""
    out: list[tuple[Period, AsOf | None]] = []
    for month in months:
        when = as_of(month, now, tz)
        kept = stored.get(month.key)
        if kept is not None and kept.get("as_of") == when.instant.isoformat():
            out.append((month, None))
        else:
            stored.pop(month.key, None)
            out.append((month, when))
    return out


def _point(key: str, kpis: dict[str, Any], source: str) -> dict[str, Any]:
    total = kpis.get("total") or {}
    closed = sum(
        int(total.get(k) or 0) for k in ("closed_repaired", "closed_expired", "closed_removed")
    )
    return {
        "period": key,
        "told_rate": total.get("told_rate"),
        "aware_rate": total.get("aware_rate"),
        "repair_rate": total.get("repair_rate"),
        "records": int(total.get("records") or 0),
        "added": int(total.get("added") or 0),
        "closed": closed,
        "overdue": int(total.get("overdue") or 0),
        "source": source,
    }


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(value, ensure_ascii=False, default=_iso))
    return result


def _iso(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- record & send


def recipients(config: Config) -> list[tuple[str, str, str]]:
    """(department code, e-mail, name): the bureau's contact and head, each department's contact."""
    out: list[tuple[str, str, str]] = []
    for dep in config.departments.departments:
        people = [dep.contact, dep.head] if dep.bureau else [dep.contact]
        for person in people:
            if person.email and person.email not in {e for _, e, _ in out}:
                out.append((dep.code, person.email, person.name or dep.name))
    return out


def _record_and_send(
    conn: Connection,
    config: Config,
    req: ReportRequest,
    files: dict[str, str],
    kpis: dict[str, Any],
    renderer: ReportRenderer,
    base: dict[str, Any],
) -> tuple[int, str]:
    c = report_runs.c
    row = conn.execute(select(c.id, c.sent_at).where(c.period == req.period.key)).first()
    stamped = {**files, "written_at": req.now.isoformat()}
    if row is None:
        conn.execute(
            insert(report_runs).values(
                period=req.period.key, created_at=req.now, files=stamped, kpis=kpis
            )
        )
    else:
        conn.execute(update(report_runs).where(c.id == row.id).values(files=stamped, kpis=kpis))
    if not req.send:
        return 0, "not_requested"
    if not kpis["total"]["records"] and not config.notices.kind(KIND).send_empty:
        log.warning("report.empty_not_sent", period=req.period.key, files=files)
        return 0, "empty_not_sent"
    if row is not None and row.sent_at is not None and not req.resend:
        return 0, "already_sent"
    occurrence = (
        req.period.key
        if row is None or row.sent_at is None
        else f"{req.period.key}/r{req.now:%Y%m%d%H%M%S}"
    )
    bureau = config.departments.bureau.code
    planned = []
    for code, email, name in recipients(config):
        ctx = _ctx(base, None if code == bureau else code, name)
        planned.append(
            Planned(
                message_key(KIND, f"report-{req.period.key}", occurrence, "email", email),
                KIND,
                occurrence,
                "email",
                email,
                name,
                None,
                code,
                renderer.payload(ctx),
            )
        )
    sent = enqueue(conn, planned, req.now)
    conn.execute(update(report_runs).where(c.period == req.period.key).values(sent_at=req.now))
    return sent, "resent" if row is not None and row.sent_at is not None else "sent"
