"""report monthly, report period."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.monthly.data import Period

OVERDUE_DAYS = 30
"""`pipeline.monthly.kpis.OVERDUE_DAYS` (kept equal by tests/test_cli_text.py)."""


def register(commands: Any) -> None:
    p = commands.add_parser(
        "report", help="月度与阶段报告 / monthly and period reports (月报告, 阶段报告)"
    )
    sub = p.add_subparsers(
        dest="report_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    monthly = sub.add_parser(
        "monthly",
        help="月度报告：Excel 工作簿、HTML 摘要，只发送一次 / "
        "the monthly report: workbook, HTML summary, sent once",
    )
    monthly.add_argument(
        "--month",
        metavar="YYYY-MM",
        help="月份（默认上个月）/ the month (default: the previous one)",
    )
    _common(monthly)
    monthly.set_defaults(handler=cmd_monthly)
    period = sub.add_parser(
        "period",
        help="任意时段的报告（阶段报告、年终总结）/ a report over any span (stage report, year-end)",
    )
    period.add_argument(
        "--from",
        dest="start",
        type=_date,
        required=True,
        metavar="DATE",
        help="起始日期 / first day",
    )
    period.add_argument(
        "--to", dest="end", type=_date, required=True, metavar="DATE", help="截止日期 / last day"
    )
    period.add_argument(
        "--dry-run",
        action="store_true",
        help="模拟：计算并显示，不写入数据库、不发送；文件只写入 --out / compute and print; "
        "record and send nothing, files only to --out",
    )
    _common(period)
    period.set_defaults(handler=cmd_period)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        metavar="DIR",
        help="文件输出目录（默认 paths.reports_dir）/ where the files go (default paths.reports_dir)",
    )
    p.add_argument(
        "--resend",
        action="store_true",
        help="已发送过也再发送一次 / send again although already sent",
    )
    p.add_argument(
        "--no-send", action="store_true", help="只生成文件，不发送 / write the files; send nothing"
    )
    p.add_argument(
        "--overdue-days",
        type=int,
        default=OVERDUE_DAYS,
        metavar="N",
        help=f"可修复且有意愿但超过 N 天未申请即为逾期（默认 {OVERDUE_DAYS}）/ repairable and "
        f"willing but not applied for more than N days is overdue (default {OVERDUE_DAYS})",
    )
    p.add_argument(
        "--json", action="store_true", help="以 JSON 输出指标 / print the KPIs as JSON on stdout"
    )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_monthly(app: App, args: argparse.Namespace) -> int:
    from pipeline.monthly.data import month_period, previous_month

    period = month_period(args.month) if args.month else previous_month(app.clock.today())
    return _run(app, args, period)


def cmd_period(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import DRY_RUN
    from pipeline.monthly.data import span_period

    if args.dry_run:
        app.discard_writes(DRY_RUN)
    return _run(app, args, span_period(args.start, args.end))


def _run(app: App, args: argparse.Namespace, period: Period) -> int:
    from pipeline import stages
    from pipeline.app import print_json
    from pipeline.summaries import SEND, pct

    send = not args.no_send and not app.what_if
    result = stages.monthly_report(app, period, args.out, send, args.resend, args.overdue_days)
    if args.json:
        print_json(result.as_json())
        return 0
    t = result.total
    kept = "" if args.out or not app.what_if else "（模拟运行：文件不保留 / what-if: not kept）"
    print(
        f"报告 / report {result.period}（截至 {result.as_of}）：记录 {t['records']}，"
        f"告知率 {pct(t['told_rate'])}，知晓率 {pct(t['aware_rate'])}，修复率 {pct(t['repair_rate'])}，"
        f"逾期 {t['overdue']}；文件 {result.files['xlsx']}、{result.files['html']}{kept}；"
        f"{SEND.get(result.send, result.send)} {result.sent} 封 / send: {result.send} "
        f"({result.sent} messages)",
        file=sys.stderr,
    )
    return 0
