"""`ledger export` and `ledger import`: the department workbook (附件3/附件4) round trip.

Wired into the existing ``ledger`` command by `pipeline.commands.ledger.register`::

    register_ledger_actions(sub)   # sub = the `ledger` parser's add_subparsers(...)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.app import App, print_json
from pipeline.errors import UsageError
from pipeline.ledger.export import export_ledger
from pipeline.ledger.reconcile import import_ledger


def register_ledger_actions(sub: Any) -> None:
    """Add `export` and `import` to the `ledger` sub-subparsers."""
    ex = sub.add_parser("export", help="write a department's sub-ledger as .xlsx (附件3/附件4)")
    ex.add_argument("--department", metavar="CODE", help="one department (default: all)")
    ex.add_argument("--out", metavar="FILE.xlsx", required=True)
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(handler=cmd_ledger_export)

    im = sub.add_parser("import", help="read a department's edited .xlsx back (对账)")
    im.add_argument("file", metavar="FILE.xlsx")
    im.add_argument("--department", metavar="CODE", help="the department the file must belong to")
    im.add_argument("--dry-run", action="store_true", help="validate and show the diff only")
    im.add_argument(
        "--apply-valid", action="store_true", help="apply the valid rows even if others have errors"
    )
    im.add_argument("--actor", metavar="NAME", help="who sent the file (for the audit trail)")
    im.add_argument("--json", action="store_true", help="the result as one JSON object on stdout")
    im.set_defaults(handler=cmd_ledger_import)


def _names(app: App) -> dict[str, str]:
    return {d.code: d.name for d in app.config.departments.departments}


def cmd_ledger_export(app: App, args: argparse.Namespace) -> int:
    names = _names(app)
    if args.department and args.department not in names:
        raise UsageError(f"unknown department {args.department!r} (known: {', '.join(names)})")
    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"--out {out}: the file name must end in .xlsx")
    result = export_ledger(app.engine, out, app.clock.now(), args.department, names)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"wrote {out}: {result.penalties} penalties, {result.list_entries} list entries "
            f"(token {result.token})",
            file=sys.stderr,
        )
    return 0


def cmd_ledger_import(app: App, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if args.department and args.department not in _names(app):
        raise UsageError(f"unknown department {args.department!r}")
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
