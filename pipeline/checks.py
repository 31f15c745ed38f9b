"""`credit-repair check-config`: validate everything an unattended run will need.

Loading the config already validated settings.yaml and departments.yaml (a bad key
stops the program before this runs). Here the later stages validate their own files,
the working-day calendar is checked for coverage, the sources (a file that can be read,
an http(s) URL, a field_map from the file's header to our field), and the SMS templates of
every kind that may go by SMS.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from pipeline.app import App
from pipeline.config.settings import SourceSettings
from pipeline.errors import CreditRepairError
from pipeline.notices.context import record_view, sample_row
from pipeline.notices.docx import render_docx
from pipeline.notices.planner import Occurrence, digest_message
from pipeline.sync.sources.fields import ALIASES, header_key
from pipeline.wiring import make_planner

CALENDAR_HORIZON_DAYS = 60
CALENDAR_ERROR_DAYS = 30


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        return (
            [f"通过 ok: {p}" for p in self.passed]
            + [f"警告 warning: {w}" for w in self.warnings]
            + [f"错误 error: {e}" for e in self.errors]
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "passed": self.passed,
        }


Check = Callable[[App, CheckReport], None]


def _settings(app: App, report: CheckReport) -> None:
    cfg = app.config
    report.passed.append(
        f"settings.yaml and departments.yaml valid ({len(cfg.departments.departments)} departments, bureau {cfg.departments.bureau.code})"
    )
    for source in cfg.settings.sources:
        report.errors += source_problems(source)


def source_problems(source: SourceSettings) -> list[str]:
    """A source's file that cannot be read, a URL that is not http(s), a bad field_map."""
    key = f"settings.yaml: sources.{source.name}"
    problems = []
    if source.kind == "file" and source.path:
        path = Path(source.path)
        if not path.exists():
            problems.append(f"{key}.path: {source.path} does not exist")
        elif not path.is_file():
            problems.append(f"{key}.path: {source.path} is not a file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{key}.path: {source.path} cannot be read (permissions)")
    if source.kind == "http" and source.url:
        scheme = urlsplit(source.url).scheme.lower()
        if scheme not in ("http", "https") or not urlsplit(source.url).netloc:
            problems.append(f"{key}.url: {source.url!r} is not an http(s) URL")
    problems += [f"{key}.field_map: {p}" for p in field_map_problems(source)]
    return problems


def field_map_problems(source: SourceSettings) -> list[str]:
    """`field_map` maps a header of the file to one of our fields (code or name)."""
    aliases = ALIASES[source.records]
    codes = {header_key(a) for names in aliases.values() for a in names}

    def is_field(text: str) -> bool:  # as the sync resolves a target (fields.build_mapping)
        return text in aliases or header_key(text) in codes

    problems = []
    for header, target in source.field_map.items():
        if is_field(target):
            continue
        if is_field(header):
            problems.append(
                f"{header!r}: {target!r}: written the wrong way round — {header!r} is a "
                f"{source.records} field and {target!r} is not: the key is the file's header, "
                f"the value our field ({target!r}: {header!r})"
            )
        else:
            known = ", ".join(aliases)
            problems.append(
                f"{header!r}: {target!r}: {target!r} is not a {source.records} field code or "
                f"name (known: {known})"
            )
    return problems


def _sms_templates(app: App, report: CheckReport) -> None:
    """With an SMS gateway, every enabled kind that may go by SMS needs its approved template:
    without one every SMS of that kind fails permanently and falls back."""
    sms = app.config.settings.sms
    if not sms.provider:
        return
    missing = [
        f"settings.yaml: sms.templates.{kind}: missing, but notices.yaml kinds.{kind} is "
        f"enabled with channels {settings.channels} and sms.provider is {sms.provider}: add the "
        "provider's approved template ({id: ..., params: [...]}) or take sms out of its channels"
        for kind, settings in app.config.notices.kinds.items()
        if settings.enabled and "sms" in settings.channels and kind not in sms.templates
    ]
    if missing:
        report.errors += missing
    else:
        report.passed.append(
            f"settings.yaml: sms.templates cover every notice kind sent by SMS ({sms.provider})"
        )
    report.warnings += _sms_without_code(app)


def _sms_without_code(app: App) -> list[str]:
    """With answer links on, a company's SMS carries its link only as the `code` parameter:
    a template that does not list it sends an SMS the company cannot answer from."""
    from pipeline.notices.planner import COMPANY_KINDS

    settings = app.config.settings
    if settings.web.public_base_url is None:
        return []
    return [
        f"settings.yaml: sms.templates.{kind}.params {template.params} 不含 code，短信不带答复链接"
        f" / has no `code`: the SMS will not carry the answer link of web.public_base_url"
        for kind, template in settings.sms.templates.items()
        if kind in COMPANY_KINDS and "code" not in template.params
    ]


def _rules(app: App, report: CheckReport) -> None:
    rules = app.config.rules
    report.passed.append(
        f"rules.yaml valid ({len(rules.rule_sets)} rule sets, selection by {rules.selection_key})"
    )


def _calendar(app: App, report: CheckReport) -> None:
    """Working-day data must reach past today: a warning 60 days ahead, an error 30 days ahead
    (every publish_by and reminder date after the end is unknown: new penalties lose theirs)."""
    until = app.calendar.covered_until()
    today = app.clock.today()
    left = (until - today).days
    if left < CALENDAR_ERROR_DAYS:
        report.errors.append(calendar_message(until, today))
    elif left < CALENDAR_HORIZON_DAYS:
        report.warnings.append(calendar_message(until, today))
    else:
        report.passed.append(f"holidays.yaml valid; working-day data until {until.isoformat()}")


def calendar_message(until: dt.date, today: dt.date) -> str:
    return (
        f"holidays.yaml: working-day data ends {until.isoformat()}, {(until - today).days} days "
        f"after {today.isoformat()}: add {until.year + 1} from the State Council's notice "
        "(see the comments in holidays.yaml); until then publish_by dates after it are unknown"
    )


def _templates(app: App, report: CheckReport) -> None:
    """Render every notice template against sample data, for every rule set's wording."""
    planner = make_planner(app)
    contact = {"email": "sample@example.org", "phone": "13800000000", "contact_name": "示例"}
    today = app.clock.today()
    try:
        messages = [
            planner.message(
                sample_row(app.config, rule_set),
                Occurrence(kind, "check", phase),
                contact,
                today,
                "email",
            )
            for rule_set in (*app.config.rules.rule_sets, "samr-2021-45")
            for kind, phase in SAMPLE_NOTICES
        ]
        messages.append(
            planner.message(
                sample_row(app.config, kind="list"),
                Occurrence("list_notice", "check"),
                contact,
                today,
                "email",
            )
        )
        cases = {
            "new_cases": [record_view(sample_row(app.config))],
            "due_cases": [record_view(sample_row(app.config))],
        }
        messages.append(digest_message(planner, app.config.departments.bureau.code, cases, today))
        for message in messages:
            if message is not None and "docx" in message.payload:
                d = message.payload["docx"]
                render_docx(d["entity_name"], d["body"], d["issuer"], d["date"])
    except (jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
        report.errors.append(f"templates: {type(exc).__name__}: {exc}")
        return
    report.passed.append(
        f"templates render against sample data ({len(messages)} notices, DOCX included)"
    )


SAMPLE_NOTICES = (
    ("repair_notice", "initial"),
    ("eligibility_reminder", "before"),
    ("eligibility_reminder", "on"),
    ("follow_up", "initial"),
)


EXAMPLE_PHONE = re.compile(r"^138000000\d{2}$")
EXAMPLE_DOMAIN = re.compile(r"@(.+\.)?example(\.[a-z]+)?$", re.IGNORECASE)


def _contacts(app: App, report: CheckReport) -> None:
    """A notice prints the department's contact: the shipped examples must not reach a company."""
    found = [
        f"departments.yaml: departments[{i}].{role}.{key}: {value!r} is an example"
        for i, dep in enumerate(app.config.departments.departments)
        for role in ("contact", "head")
        for key, value in getattr(dep, role).model_dump().items()
        if _example(key, value)
    ]
    settings = app.config.settings
    if not found:
        report.passed.append("departments.yaml: no example contacts")
    elif settings.email.host or settings.sms.provider:
        report.errors += [f"{f}: replace it before notices are sent" for f in found]
    else:
        report.warnings += [f"{f}: replace it before enabling e-mail or SMS" for f in found]


def _example(key: str, value: str) -> bool:
    if key == "phone":
        return bool(EXAMPLE_PHONE.match(value.strip()))
    return key == "email" and bool(EXAMPLE_DOMAIN.search(value.strip()))


CHECKS: list[Check] = [_settings, _sms_templates, _rules, _calendar, _contacts, _templates]


def check_config(app: App) -> CheckReport:
    report = CheckReport()
    for check in CHECKS:
        try:
            check(app, report)
        except CreditRepairError as exc:
            report.errors.append(str(exc))
    return report
