"""init, check-config, sync, contacts import, quarantine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands.text import table
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.sync.snapshot import SyncResult

SNAPSHOT_KINDS = ("penalties", "severe-list")
"""`pipeline.sync.loading.KINDS` (kept equal by tests/test_cli_text.py), here so that building
the parser imports no sync module."""
JSON_HELP = "以 JSON 输出到标准输出 / print the result as JSON on stdout"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "init",
        help="创建或升级数据库结构，记录安装时间 / create or upgrade the database schema",
        description="创建或升级数据库结构；首次运行时记录安装时间（此前到期的月度任务不补跑）/ "
        "create or upgrade the database schema; the first one records the installation time "
        "(monthly jobs due before it are not caught up)",
    )
    p.set_defaults(handler=cmd_init)

    p = commands.add_parser(
        "check-config",
        help="检查全部配置并渲染所有模板 / validate all config and render every template",
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_check_config)

    p = commands.add_parser(
        "sync", help="导入处罚或严重失信名单快照 / load a penalty or severe-list snapshot"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--source",
        metavar="NAME",
        help="settings.yaml 中配置的数据源 / a source configured in settings.yaml",
    )
    where.add_argument(
        "--file",
        metavar="PATH",
        help="快照文件（CSV、XLSX 或 JSON）/ a snapshot file (CSV, XLSX or JSON)",
    )
    p.add_argument(
        "--kind",
        choices=SNAPSHOT_KINDS,
        help="--file 的内容：penalties 行政处罚（默认）或 severe-list 严重失信名单 / "
        "what --file holds (default penalties)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="保护机制拒绝时仍然导入 / apply even if the guard would refuse",
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_sync)

    p = commands.add_parser("contacts", help="企业联系人 / entity contacts")
    sub = p.add_subparsers(
        dest="contacts_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    imp = sub.add_parser(
        "import",
        help="导入联系人（统一社会信用代码、联系人、联系电话、电子邮箱）/ "
        "load contacts (uscc, contact_name, phone, email)",
    )
    imp.add_argument("path", help="联系人文件（CSV 或 XLSX）/ the contacts file (CSV or XLSX)")
    imp.add_argument("--json", action="store_true", help=JSON_HELP)
    imp.set_defaults(handler=cmd_contacts_import)

    p = commands.add_parser(
        "quarantine", help="列出同步未能导入的行 / list rows a sync could not load"
    )
    p.add_argument(
        "--sync-id",
        type=int,
        help="某次同步（默认：每个来源最近一次）/ one sync (default: the latest of each source)",
    )
    p.add_argument(
        "--warnings",
        action="store_true",
        help="同时列出带警告导入的行 / also list rows loaded with a warning",
    )
    p.add_argument("--json", action="store_true", help="每行一个 JSON 对象 / one JSON object a row")
    p.set_defaults(handler=cmd_quarantine)


def cmd_init(app: App, args: argparse.Namespace) -> int:
    from pipeline.db.migrate import current_revision
    from pipeline.scheduler.runner import installed_at
    from pipeline.summaries import local_time

    if app.what_if:  # a what-if never migrates: say where the real database stands
        revision = current_revision(app.unmigrated_engine())
        print(
            f"数据库结构版本 {revision}（模拟运行：未改动）/ "
            f"database schema at revision {revision} (what-if: unchanged)",
            file=sys.stderr,
        )
        return 0
    revision = current_revision(app.engine)
    since = local_time(installed_at(app.engine, app.clock.now(), "init"), app.config.settings.tz)
    print(
        f"数据库结构版本 {revision}，安装时间 {since} / "
        f"database schema at revision {revision}; installation since {since}",
        file=sys.stderr,
    )
    return 0


def cmd_check_config(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import print_json

    report = stages.check_config(app)
    if args.json:
        print_json(report.as_json())
    else:
        for line in report.lines():
            print(line, file=sys.stderr)
        verdict = (
            "配置检查通过 / the configuration is valid"
            if report.ok
            else f"配置有 {len(report.errors)} 处错误 / {len(report.errors)} errors"
        )
        print(f"{verdict}（警告 {len(report.warnings)} / warnings）", file=sys.stderr)
    return 0 if report.ok else 2


def cmd_sync(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import print_json
    from pipeline.progress import Progress

    if args.kind and not args.file:
        raise UsageError("--kind goes with --file (a configured source says what it holds)")
    targets = stages.sync_targets(app, args.source, args.file, args.kind or "penalties")
    worst = 0
    for target in targets:
        with Progress(f"同步 / sync {target.name}", unit="行 rows") as bar:
            result = stages.sync(app, target, app.clock.now(), args.force, bar.update)
        if args.json:
            print_json(result.as_json())
        else:
            _print_sync(target.name, result)
        worst = max(worst, 1 if result.refused else 0)
    return worst


SYNC_COUNTS = (
    ("rows_read", "读取"),
    ("added", "新增"),
    ("updated", "更新"),
    ("unchanged", "未变"),
    ("vanished", "消失"),
    ("out_of_scope", "不在辖区"),
    ("quarantined", "隔离"),
    ("warnings", "警告"),
)


def _print_sync(name: str, result: SyncResult) -> None:
    counts = "，".join(f"{zh} {getattr(result, key)}" for key, zh in SYNC_COUNTS)
    english = ", ".join(f"{key} {getattr(result, key)}" for key, _ in SYNC_COUNTS)
    state = "已拒绝 REFUSED" if result.refused else "已导入 applied"
    print(f"同步 {name}：{state}：{counts} / {english}", file=sys.stderr)
    if result.reason:
        print(f"  {result.reason}", file=sys.stderr)
    for item in result.quarantine[:20]:
        print(
            f"  第 {item['row']} 行 row: {item['field'] or '-'}: {item['reason']}", file=sys.stderr
        )
    if len(result.quarantine) > 20:
        print(
            f"  …另有 {len(result.quarantine) - 20} 行 / {len(result.quarantine) - 20} more "
            "(credit-repair quarantine)",
            file=sys.stderr,
        )


def cmd_contacts_import(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.sync.contacts import import_contacts

    limits = app.config.settings.files.xlsx_limits()
    result = import_contacts(app.engine, Path(args.path), app.clock.now(), limits)
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"联系人 {args.path}：读取 {result.rows_read}，新增 {result.added}，变更 {result.changed}，"
            f"未变 {result.unchanged}，拒绝 {result.rejected} / read {result.rows_read}, added "
            f"{result.added}, changed {result.changed}, unchanged {result.unchanged}, rejected "
            f"{result.rejected}",
            file=sys.stderr,
        )
        for item in result.issues[:50]:
            print(f"  第 {item['row']} 行 row: {item['field']}: {item['reason']}", file=sys.stderr)
    return 0


LEVELS = {"error": "错误 error", "warning": "警告 warning"}


def cmd_quarantine(app: App, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from pipeline.app import print_json
    from pipeline.db.models import QuarantinedRow, SyncRun

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
    if args.json:
        for row in rows:
            print_json(row)
        return 0
    table(
        ("同步 sync", "来源 source", "行 row", "级别 level", "字段 field", "原因 reason"),
        (
            (
                r["sync_id"],
                r["source"],
                r["row_no"],
                LEVELS.get(r["level"], r["level"]),
                r["field"],
                r["reason"],
            )
            for r in rows
        ),
    )
    return 0
