"""The report's e-mail: subject, HTML summary, plain text and SMS line, from Jinja2 templates.

Templates: ``templates/reports/{subject,body.html,body.txt,sms.txt}.j2`` (a configured
``paths.templates_dir`` overrides them file by file). The HTML is built for mail
clients: inline styles, tables only, no scripts, no SVG, no images — the bar chart is
a table whose coloured cell's width is the rate, which Outlook, Foxmail, QQ Mail and
web mail all render. UTF-8 is declared twice (meta charset and http-equiv) so Chinese
text survives clients that only look at one.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

from pipeline.notices.templating import cn_date

PARTS = ("subject", "body.html", "body.txt", "sms.txt")
BAR_COLORS = {
    "told_rate": ("告知率", "#4472C4"),
    "aware_rate": ("知晓率", "#70AD47"),
    "repair_rate": ("修复率", "#ED7D31"),
}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def bars(block: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, (label, color) in BAR_COLORS.items():
        value = block.get(key)
        width = 0 if value is None else max(0, min(100, round(value * 100)))
        out.append({"label": label, "color": color, "value": value, "width": width})
    return out


class ReportRenderer:
    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @cached_property
    def _envs(self) -> dict[bool, jinja2.Environment]:
        out = {}
        for autoescape in (False, True):
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
                undefined=jinja2.StrictUndefined,
                autoescape=autoescape,
            )
            env.filters.update(pct=pct, cn_date=cn_date)
            out[autoescape] = env
        return out

    def render(self, part: str, context: dict[str, Any]) -> str:
        env = self._envs[part.endswith("html")]
        text = env.get_template(f"reports/{part}.j2").render(context)
        return text.strip() if part in ("subject", "sms.txt") else text

    def payload(self, context: dict[str, Any]) -> dict[str, Any]:
        """The outbox payload `pipeline.delivery.dispatcher.to_message` expects."""
        parts = {part: self.render(part, context) for part in PARTS}
        return {
            "subject": parts["subject"],
            "text": parts["body.txt"],
            "html": parts["body.html"],
            "sms_text": parts["sms.txt"],
            "sms_template": "monthly_report",
            "sms_params": {},
        }


def context(
    kpis: dict[str, Any],
    trend: list[dict[str, Any]],
    *,
    title: str,
    as_of_text: str,
    issuer: str,
    sign_name: str,
    notes: list[str],
    xlsx_name: str,
    department: str | None = None,
    greeting: str = "各位同事",
) -> dict[str, Any]:
    """The template context; `department` highlights that department's row."""
    departments = [
        {**d, "mine": d["code"] == department, "bars": bars(d)} for d in kpis["departments"]
    ]
    chart = [{"name": "全区合计", "bars": bars(kpis["total"]), "mine": False}, *departments]
    return {
        "title": title,
        "as_of_text": as_of_text,
        "issuer": issuer,
        "sign_name": sign_name,
        "total": kpis["total"],
        "departments": departments,
        "chart": chart,
        "trend": trend,
        "notes": notes,
        "xlsx_name": xlsx_name,
        "greeting": greeting,
        "empty": kpis["total"]["records"] == 0,
    }
