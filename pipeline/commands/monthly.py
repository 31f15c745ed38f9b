"""escalate, remind: the monthly cycle's chasing."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from pipeline import stages
from pipeline.app import App, print_json


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


def cmd_escalate(app: App, args: argparse.Namespace) -> int:
    result = stages.escalate(app, args.month, args.dry_run)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"escalation {result.month}: found {result.found}, escalated {result.escalated} "
            f"(levels {result.by_level}), digests {result.digests}",
            file=sys.stderr,
        )
        for item in result.items:
            print(
                f"  L{item['level']} {item['department_code']:6} {item['reason_text']} {item['entity_name'] or ''} {item['detail']}",
                file=sys.stderr,
            )
    return 0


def cmd_remind(app: App, args: argparse.Namespace) -> int:
    result = stages.remind_departments(app, args.month, args.dry_run)
    if args.json:
        print_json(result.as_json())
    else:
        print(f"reminders: {result.as_json()}", file=sys.stderr)
    return 0
