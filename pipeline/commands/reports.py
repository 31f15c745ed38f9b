"""report monthly, report period."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from pipeline import stages
from pipeline.app import DRY_RUN, App, print_json
from pipeline.monthly.data import Period, month_period, previous_month, span_period
from pipeline.monthly.kpis import OVERDUE_DAYS


def register(commands: Any) -> None:
    p = commands.add_parser("report", help="monthly and period reports (月报告, 阶段报告)")
    sub = p.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    monthly = sub.add_parser(
        "monthly", help="the monthly report: workbook, HTML summary, sent once"
    )
    monthly.add_argument("--month", metavar="YYYY-MM", help="default: the previous month")
    _common(monthly)
    monthly.set_defaults(handler=cmd_monthly)
    period = sub.add_parser(
        "period", help="a report over any span (stage report, year-end summary)"
    )
    period.add_argument("--from", dest="start", type=_date, required=True, metavar="DATE")
    period.add_argument("--to", dest="end", type=_date, required=True, metavar="DATE")
    period.add_argument(
        "--dry-run",
        action="store_true",
        help="模拟：计算并显示，不写入数据库、不发送；文件只写入 --out / compute and print; "
        "record and send nothing, files only to --out",
    )
    _common(period)
    period.set_defaults(handler=cmd_period)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="where the files go (default paths.reports_dir)")
    p.add_argument("--resend", action="store_true", help="send again although already sent")
    p.add_argument("--no-send", action="store_true", help="write the files; send nothing")
    p.add_argument(
        "--overdue-days",
        type=int,
        default=OVERDUE_DAYS,
        metavar="N",
        help=f"repairable and willing but not applied for more than N days is overdue (default {OVERDUE_DAYS})",
    )
    p.add_argument("--json", action="store_true", help="print the KPIs as JSON on stdout")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_monthly(app: App, args: argparse.Namespace) -> int:
    period = month_period(args.month) if args.month else previous_month(app.clock.today())
    return _run(app, args, period)


def cmd_period(app: App, args: argparse.Namespace) -> int:
    if args.dry_run:
        app.discard_writes(DRY_RUN)
    return _run(app, args, span_period(args.start, args.end))


def _run(app: App, args: argparse.Namespace, period: Period) -> int:
    send = not args.no_send and not app.what_if
    result = stages.monthly_report(app, period, args.out, send, args.resend, args.overdue_days)
    if args.json:
        print_json(result.as_json())
    else:
        t = result.total
        print(
            f"report {result.period} as of {result.as_of}: {t['records']} records, "
            f"告知率 {_pct(t['told_rate'])}, 知晓率 {_pct(t['aware_rate'])}, 修复率 {_pct(t['repair_rate'])}, "
            f"逾期 {t['overdue']}; wrote {result.files['xlsx']} and {result.files['html']}; "
            f"send: {result.send} ({result.sent} messages)",
            file=sys.stderr,
        )
    return 0


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
