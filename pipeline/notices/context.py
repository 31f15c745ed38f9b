"""The values a notice template sees, built from a ledger record (pure).

Keeping this in one place means the e-mail, the SMS, the DOCX and `preview` print the
same dates — the ones the eligibility engine computed — and the same wording.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pipeline.config import Config, Department
from pipeline.config.notices import NoticesConfig
from pipeline.ledger.state import progress_names

SEVERITY_CLASS = {
    "minor": "轻微失信",
    "general": "一般失信",
    "serious": "严重失信",
    "special_serious": "特定严重失信",
}
STATUS_TEXT = {
    "in_min_period": "最短公示期内",
    "repairable": "可申请修复",
    "non_repairable": "不可提前修复",
    "expired": "已过最长公示期",
    "not_published": "不予公示",
    "error": "待核实",
}
RECORD_KEYS = (
    "id",
    "kind",
    "entity_name",
    "decision_no",
    "authority",
    "uscc",
    "decision_date",
    "status",
    "publish_by",
    "repairable_from",
    "min_end",
    "max_end",
    "removal_on",
    "green_channel",
    "list_name",
    "list_reason",
    "progress",
    "rule_set",
    "market_regulation",
    "period_start",
    "publication_date",
    "restrictions",
)


def penalty_text(row: Any) -> str:
    if row.get("penalty_content"):
        return str(row["penalty_content"])
    types = (row.get("penalty_types") or "").replace(";", "、") or "行政处罚"
    fine = row.get("fine_amount")
    if fine:
        return f"{types}（罚款{Decimal(fine) * 10000:.0f}元）"
    return types


def record_view(row: Any) -> dict[str, Any]:
    view = {k: row.get(k) for k in RECORD_KEYS}
    view["violation"] = row.get("violation_type") or ""
    view["penalty"] = penalty_text(row)
    view["severity_class"] = SEVERITY_CLASS.get(row.get("severity") or "", "失信")
    view["status_text"] = STATUS_TEXT.get(row.get("status") or "", "")
    view["progress_name"] = progress_names(row.get("kind") or "penalty").get(
        row.get("progress") or 0, ""
    )
    return view


def span(start: dt.date | None, end: dt.date | None) -> str:
    """The length of a period that ends `end` (inclusive) after `start`: 3个月, 1年, 3年."""
    if start is None or end is None:
        return ""
    months = (end.year - start.year) * 12 + end.month - start.month
    return f"{months // 12}年" if months and months % 12 == 0 else f"{months}个月"


def wording_view(notices: NoticesConfig, row: Any) -> dict[str, Any]:
    """The rule set's wording (empty for list entries, which the listing department governs)."""
    if row.get("kind") != "penalty":
        return {
            "basis": "",
            "citation": "",
            "repair_term": "信用修复",
            "severity_words": True,
            "sites": None,
            "apply": "",
            "materials": [],
            "process": "",
            "commitment": "",
        }
    return notices.wording(row.get("rule_set")).model_dump()


def department_view(dep: Department) -> dict[str, Any]:
    return {
        "code": dep.code,
        "name": dep.name,
        "contact_name": dep.contact.name,
        "contact_phone": dep.contact.phone,
        "contact_email": dep.contact.email,
    }


def notice_context(
    config: Config,
    notices: NoticesConfig,
    row: Any,
    today: dt.date,
    occurrence_kind: str = "initial",
) -> dict[str, Any]:
    dep = config.department(row["department_code"]) or config.departments.bureau
    route = notices.routes["market_regulation" if row.get("market_regulation") else "default"]
    list_rule = notices.list_rules.get(
        row.get("list_name") or "", notices.list_rules.get("default", "")
    )
    rule = wording_view(notices, row)
    market = row.get("rule_set") == config.rules.market_regulation.id
    publish_by = row.get("publish_by")
    return {
        "record": record_view(row),
        "department": department_view(dep),
        "bureau": department_view(config.departments.bureau),
        "issuer": _issuer(notices, row),
        "sign_name": config.settings.sms.sign_name,
        "sites": rule["sites"] or notices.sites,
        "publish_days": config.rules.market_regulation.publish_within_working_days
        if market
        else notices.publish_within_working_days,
        "published": publish_by is not None and today > publish_by,
        "min_span": span(row.get("period_start"), row.get("min_end")),
        "max_span": span(row.get("period_start"), row.get("max_end")),
        "restrictions": [r["reason"] for r in row.get("restrictions") or []],
        "route": route.model_dump(),
        "rule": rule,
        "list_rule": {"removal_conditions": list_rule},
        "today": today,
        "occurrence_kind": occurrence_kind,
        "link": None,
    }


def _issuer(notices: NoticesConfig, row: Any) -> str:
    """A company's notice is signed by the penalising authority (处罚即告知) unless configured."""
    if notices.issued_by == "authority" and row.get("kind") == "penalty" and row.get("authority"):
        return str(row["authority"])
    return notices.issuer


def sms_params(context: dict[str, Any]) -> dict[str, str]:
    """Short named values for provider templates (Tencent allows 12 characters each)."""
    if "record" not in context:  # a digest to a department: how many cases it lists
        if "totals" in context:  # a digest: its sections' counts (it lists a bounded number)
            count = sum(context["totals"].values())
        else:  # a reminder or an escalation lists every case it is about
            count = sum(len(context.get(k) or []) for k in ("cases", "items"))
        return {"count": str(count), "phone": str(context["department"]["contact_phone"] or "")}
    rec = context["record"]
    date = rec.get("repairable_from") or rec.get("max_end")
    params = {
        "name": str(rec["entity_name"]),
        "no": str(rec["decision_no"]),
        "date": date.isoformat() if isinstance(date, dt.date) else str(date or ""),
        "phone": str(context["department"]["contact_phone"] or ""),
    }
    link = context.get("link")
    if link:  # the provider's approved template holds the page's address; only the code varies
        params["code"] = link["code"]
    return params


def sample_row(
    config: Config, rule_set: str = "ndrc-2025-36", kind: str = "penalty"
) -> dict[str, Any]:
    """A realistic record for check-config and preview without data."""
    dep = config.departments.departments[-1]
    return {
        "id": 0,
        "kind": kind,
        "entity_name": "双鸭山市示例<商贸>有限公司",
        "decision_no": "宝示罚〔2026〕1号",
        "authority": dep.authorities[0].name if dep.authorities else dep.name,
        "uscc": "91230506MA1B3N1N2M",
        "decision_date": dt.date(2026, 9, 28),
        "period_start": dt.date(2026, 9, 28),
        "status": "in_min_period",
        "publish_by": dt.date(2026, 10, 13),
        "repairable_from": dt.date(2026, 12, 29),
        "min_end": dt.date(2026, 12, 28),
        "max_end": dt.date(2027, 9, 28),
        "removal_on": dt.date(2027, 9, 29),
        "green_channel": True,
        "list_name": "安全生产严重失信主体名单",
        "list_reason": "发生较大生产安全事故",
        "progress": 0,
        "rule_set": rule_set,
        "market_regulation": False,
        "violation_type": "消防设施未保持完好有效",
        "penalty_content": "罚款人民币5000元",
        "severity": "general",
        "department_code": dep.code,
        "penalty_types": "罚款",
        "fine_amount": Decimal("0.5"),
    }
