"""`credit-repair check-config`: validate everything an unattended run will need.

Loading the config already validated settings.yaml and departments.yaml (a bad key
stops the program before this runs). Here the later stages validate their own files,
the working-day calendar is checked for coverage, and file sources for existence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.app import App
from pipeline.calendar import WorkingCalendar, load_holidays
from pipeline.errors import CreditRepairError
from pipeline.rules import load_rules

CALENDAR_HORIZON_DAYS = 60


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
            [f"ok: {p}" for p in self.passed]
            + [f"warning: {w}" for w in self.warnings]
            + [f"error: {e}" for e in self.errors]
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
        if source.kind == "file" and source.path and not Path(source.path).exists():
            report.warnings.append(
                f"settings.yaml: sources.{source.name}.path: {source.path} does not exist (yet)"
            )


def _rules(app: App, report: CheckReport) -> None:
    rules = load_rules(app.config)
    report.passed.append(
        f"rules.yaml valid ({len(rules.rule_sets)} rule sets, selection by {rules.selection_key})"
    )


def _calendar(app: App, report: CheckReport) -> None:
    calendar = WorkingCalendar(load_holidays(app.config))
    until = calendar.covered_until()
    today = app.clock.today()
    if until < today + dt.timedelta(days=CALENDAR_HORIZON_DAYS):
        report.warnings.append(
            f"holidays.yaml: working-day data ends {until.isoformat()}, within {CALENDAR_HORIZON_DAYS} days of {today.isoformat()}: "
            f"add {until.year + 1} from the State Council's notice (see the comments in holidays.yaml)"
        )
    else:
        report.passed.append(f"holidays.yaml valid; working-day data until {until.isoformat()}")


CHECKS: list[Check] = [_settings, _rules, _calendar]


def check_config(app: App) -> CheckReport:
    report = CheckReport()
    for check in CHECKS:
        try:
            check(app, report)
        except CreditRepairError as exc:
            report.errors.append(str(exc))
    return report
