"""`ledger export` and `ledger import`: the department workbook (附件3/附件4) round trip.

Wired into the existing ``ledger`` command by `pipeline.commands.ledger.register`::

    register_ledger_actions(sub)   # sub = the `ledger` parser's add_subparsers(...)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands.text import check_department
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.app import App


def register_ledger_actions(sub: Any) -> None:
    """Add `export` and `import` to the `ledger` sub-subparsers."""
    ex = sub.add_parser(
        "export",
        help="导出部门台账 .xlsx（附件3/附件4）/ write a department's sub-ledger as .xlsx",
    )
    ex.add_argument(
        "--department",
        metavar="CODE",
        help="只导出某一部门（默认全部）/ one department (default: all)",
    )
    ex.add_argument(
        "--out", metavar="FILE.xlsx", required=True, help="输出文件 / the file to write"
    )
    ex.add_argument("--json", action="store_true", help="以 JSON 输出 / the result as JSON")
    ex.set_defaults(handler=cmd_ledger_export)

    im = sub.add_parser(
        "import",
        help="读回部门填写后的 .xlsx（对账）/ read a department's edited .xlsx back (对账)",
    )
    im.add_argument("file", metavar="FILE.xlsx", help="部门交回的台账文件 / the returned workbook")
    im.add_argument(
        "--department",
        metavar="CODE",
        help="文件必须属于的部门 / the department the file must belong to",
    )
    im.add_argument(
        "--dry-run",
        action="store_true",
        help="只校验并显示差异，不写入 / validate and show the diff only",
    )
    im.add_argument(
        "--apply-valid",
        action="store_true",
        help="即使其他行有错误，也写入有效的行 / apply the valid rows even if others have errors",
    )
    im.add_argument(
        "--actor", metavar="NAME", help="送交文件的人（写入留痕）/ who sent the file (audit trail)"
    )
    im.add_argument(
        "--json", action="store_true", help="以 JSON 输出 / the result as one JSON object on stdout"
    )
    im.set_defaults(handler=cmd_ledger_import)


def _names(app: App) -> dict[str, str]:
    return {d.code: d.name for d in app.config.departments.departments}


def cmd_ledger_export(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.ledger.export import export_ledger

    names = _names(app)
    check_department(args.department, names)
    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out {out}: the file name must end in .xlsx")
    result = export_ledger(app.engine, out, app.clock.now(), args.department, names)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"已写入 {out}：处罚 {result.penalties} 条，名单 {result.list_entries} 条（令牌 {result.token}）/ "
            f"wrote {out}: {result.penalties} penalties, {result.list_entries} list entries "
            f"(token {result.token})",
            file=sys.stderr,
        )
    return 0


def cmd_ledger_import(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.ledger.reconcile import import_ledger

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    check_department(args.department, _names(app))
    report = import_ledger(
        app.engine,
        path,
        app.clock.now(),
        args.department,
        dry_run=args.dry_run,
        apply_valid=args.apply_valid,
        actor=args.actor,
        follow_up_days=app.config.settings.green_channel.follow_up_days,
        limits=app.config.settings.files.xlsx_limits(),
    )
    for line in report.lines():
        print(line, file=sys.stderr)
    if args.json:
        print_json(report.as_json())
    return report.exit_code
