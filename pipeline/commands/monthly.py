"""escalate, remind: the monthly cycle's chasing."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from pipeline.commands.text import table

if TYPE_CHECKING:
    from pipeline.app import App

DRY_RUN_HELP = "只显示，不写入、不发送 / print what would happen; write and send nothing"
JSON_HELP = "以 JSON 输出 / the result as JSON on stdout"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "escalate",
        help="对某月运行督办升级（每月20日前）/ run the escalation ladder for a month (by the 20th)",
    )
    p.add_argument(
        "--month",
        metavar="YYYY-MM",
        type=_month,
        help="月份（默认 --now 所在月）/ the month (default: the month of --now)",
    )
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_escalate)

    p = commands.add_parser(
        "remind",
        help="向各部门发送月度台账提醒（每月15日）/ "
        "send each department its monthly ledger reminder (the 15th)",
    )
    p.add_argument(
        "--month",
        metavar="YYYY-MM",
        type=_month,
        help="月份（默认 --now 所在月）/ the month (default: the month of --now)",
    )
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_remind)


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM")
    return text


def cmd_escalate(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import print_json
    from pipeline.summaries import job_summary

    result = stages.escalate(app, args.month, args.dry_run)
    if args.json:
        print_json(result.as_json())
        return 0
    print(f"督办 / escalation {job_summary('escalate', result.as_json())}", file=sys.stderr)
    table(
        ("级别 level", "部门 department", "原因 reason", "企业名称 entity", "说明 detail"),
        (
            (
                f"{item['level']} 级",
                item["department_code"],
                item["reason_text"],
                item["entity_name"],
                item["detail"],
            )
            for item in result.items
        ),
    )
    return 0


def cmd_remind(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import print_json
    from pipeline.summaries import job_summary

    result = stages.remind_departments(app, args.month, args.dry_run)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"月度提醒 / reminders {job_summary('department_reminder', result.as_json())}",
            file=sys.stderr,
        )
    return 0
