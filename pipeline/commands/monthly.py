"""escalate, remind: the monthly cycle's chasing."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any

from pipeline.app import App, print_json
from pipeline.commands.notices import make_planner
from pipeline.config.schedule import JobSchedule
from pipeline.errors import UsageError
from pipeline.monthly.escalation import department_reminders, escalate, month_of
from pipeline.scheduler.schedule import deadline


def register(commands: Any) -> None:
    p = commands.add_parser("escalate", help="run the escalation ladder for a month (by the 20th)")
    p.add_argument("--month", metavar="YYYY-MM", type=_month, help="default: the month of --now")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_escalate)

    p = commands.add_parser(
        "remind", help="send each department its monthly ledger reminder (the 15th)"
    )
    p.add_argument("--month", metavar="YYYY-MM", type=_month)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remind)


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM")
    return text


def report_deadline(app: App, month: str) -> dt.date:
    """When this month's reports are due: the escalate job's day (the 20th, or the working day before)."""
    spec = app.config.schedule.jobs.get("escalate") or JobSchedule(by_day=20)
    year, mon = map(int, month.split("-"))
    if spec.by_day is None:
        return dt.date(year, mon, 20)
    return deadline(year, mon, spec, app.calendar, app.config.settings.tz).date()


def run_escalation(app: App, month: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    month = month or month_of(app.clock.today())
    if month > month_of(app.clock.today()):
        raise UsageError(f"--month {month} is in the future of --now {app.clock.today()}")
    result = escalate(
        app.engine,
        app.config,
        make_planner(app),
        month,
        app.clock.today(),
        app.clock.now(),
        dry_run,
    )
    return result.as_json()


def run_reminders(app: App, month: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    month = month or month_of(app.clock.today())
    due = report_deadline(app, month)
    return department_reminders(
        app.engine,
        app.config,
        make_planner(app),
        month,
        app.clock.today(),
        due,
        app.clock.now(),
        dry_run,
    )


def cmd_escalate(app: App, args: argparse.Namespace) -> int:
    result = run_escalation(app, args.month, args.dry_run)
    if args.json:
        print_json(result)
    else:
        print(f"escalation {result['month']}: found {result['found']}, escalated {result['escalated']} "
              f"(levels {result['by_level']}), digests {result['digests']}", file=sys.stderr)  # fmt: skip
        for item in result["items"]:
            print(
                f"  L{item['level']} {item['department_code']:6} {item['reason_text']} {item['entity_name'] or ''} {item['detail']}",
                file=sys.stderr,
            )
    return 0


def cmd_remind(app: App, args: argparse.Namespace) -> int:
    result = run_reminders(app, args.month, args.dry_run)
    print_json(result) if args.json else print(f"reminders: {result}", file=sys.stderr)
    return 0
