"""init, check-config, sync, contacts import, quarantine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pipeline import stages
from pipeline.app import App, print_json
from pipeline.db.migrate import current_revision
from pipeline.db.models import QuarantinedRow, SyncRun
from pipeline.errors import UsageError
from pipeline.progress import Progress
from pipeline.sync.contacts import import_contacts
from pipeline.sync.loading import KINDS
from pipeline.sync.snapshot import SyncResult


def register(commands: Any) -> None:
    p = commands.add_parser("init", help="create or upgrade the database schema")
    p.set_defaults(handler=cmd_init)

    p = commands.add_parser("check-config", help="validate all config and render every template")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_check_config)

    p = commands.add_parser("sync", help="load a penalty or severe-list snapshot")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--source", metavar="NAME", help="a source configured in settings.yaml")
    where.add_argument("--file", metavar="PATH", help="a snapshot file (CSV, XLSX or JSON)")
    p.add_argument("--kind", choices=sorted(KINDS), help="what --file holds (default penalties)")
    p.add_argument("--force", action="store_true", help="apply even if the guard would refuse")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(handler=cmd_sync)

    p = commands.add_parser("contacts", help="entity contacts")
    sub = p.add_subparsers(dest="contacts_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="load contacts (uscc, contact_name, phone, email)")
    imp.add_argument("path")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=cmd_contacts_import)

    p = commands.add_parser("quarantine", help="list rows a sync could not load")
    p.add_argument("--sync-id", type=int, help="default: the latest sync of each source")
    p.add_argument("--warnings", action="store_true", help="also list rows loaded with a warning")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_quarantine)


def cmd_init(app: App, args: argparse.Namespace) -> int:
    revision = current_revision(app.engine)
    print(f"database schema at revision {revision}", file=sys.stderr)
    return 0


def cmd_check_config(app: App, args: argparse.Namespace) -> int:
    report = stages.check_config(app)
    if args.json:
        print_json(report.as_json())
    else:
        for line in report.lines():
            print(line, file=sys.stderr)
    return 0 if report.ok else 2


def cmd_sync(app: App, args: argparse.Namespace) -> int:
    if args.kind and not args.file:
        raise UsageError("--kind goes with --file (a configured source says what it holds)")
    targets = stages.sync_targets(app, args.source, args.file, args.kind or "penalties")
    worst = 0
    for target in targets:
        with Progress(f"sync {target.name}", unit="rows") as bar:
            result = stages.sync(app, target, app.clock.now(), args.force, bar.update)
        if args.json:
            print_json(result.as_json())
        else:
            _print_sync(target.name, result)
        worst = max(worst, 1 if result.refused else 0)
    return worst


def _print_sync(name: str, result: SyncResult) -> None:
    counts = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("rows_read", result.rows_read),
            ("added", result.added),
            ("updated", result.updated),
            ("unchanged", result.unchanged),
            ("vanished", result.vanished),
            ("out_of_scope", result.out_of_scope),
            ("quarantined", result.quarantined),
            ("warnings", result.warnings),
        )
    )
    state = "REFUSED" if result.refused else "applied"
    print(f"sync {name}: {state}: {counts}", file=sys.stderr)
    if result.reason:
        print(f"  {result.reason}", file=sys.stderr)
    for item in result.quarantine[:20]:
        print(f"  row {item['row']}: {item['field'] or '-'}: {item['reason']}", file=sys.stderr)
    if len(result.quarantine) > 20:
        print(
            f"  ... {len(result.quarantine) - 20} more (credit-repair quarantine)",
            file=sys.stderr,
        )


def cmd_contacts_import(app: App, args: argparse.Namespace) -> int:
    limits = app.config.settings.files.xlsx_limits()
    result = import_contacts(app.engine, Path(args.path), app.clock.now(), limits)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"contacts {args.path}: read {result.rows_read}, added {result.added}, changed {result.changed}, unchanged {result.unchanged}, rejected {result.rejected}",
            file=sys.stderr,
        )
        for item in result.issues[:50]:
            print(f"  row {item['row']}: {item['field']}: {item['reason']}", file=sys.stderr)
    return 0


def cmd_quarantine(app: App, args: argparse.Namespace) -> int:
    q, s = QuarantinedRow, SyncRun
    with app.engine.connect() as conn:
        if args.sync_id:
            ids = [args.sync_id]
        else:
            ids = list(conn.execute(select(func.max(s.id)).group_by(s.source, s.kind)).scalars())
        query = select(q.sync_id, q.source, q.row_no, q.field, q.level, q.reason).where(
            q.sync_id.in_(ids)
        )
        if not args.warnings:
            query = query.where(q.level == "error")
        rows = [dict(r) for r in conn.execute(query.order_by(q.sync_id, q.row_no)).mappings()]
    for row in rows:
        if args.json:
            print_json(row)
        else:
            print(
                f"sync {row['sync_id']} {row['source']} row {row['row_no']}: {row['level']}: {row['field'] or '-'}: {row['reason']}"
            )
    return 0
