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
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="模拟运行：显示各列对应的字段和导入结果，不写入数据库 / show which column became "
        "which field and what the sync would do, keeping nothing",
    )
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(handler=cmd_sync)

    p = commands.add_parser("sources", help="数据源 / snapshot sources")
    sub = p.add_subparsers(
        dest="sources_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    check = sub.add_parser(
        "check",
        help="检查数据源：各列对应的字段、未识别的列、前几行的解析结果 / which column becomes "
        "which field, the unmapped columns and the first rows as parsed",
    )
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "name", nargs="?", metavar="NAME", help="settings.yaml 中的数据源 / a configured source"
    )
    where.add_argument(
        "--file",
        metavar="PATH",
        help="快照文件（CSV、XLSX、XLS、ODS 或 JSON）/ a snapshot file",
    )
    check.add_argument(
        "--kind",
        choices=SNAPSHOT_KINDS,
        help="--file 的内容（默认 penalties）/ what --file holds (default penalties)",
    )
    check.add_argument(
        "--date-order",
        choices=("ymd", "mdy", "dmy"),
        help="--file 中年份在后的日期的顺序（默认 ymd：拒绝）/ how --file writes year-last "
        "dates (default ymd: refused)",
    )
    check.add_argument(
        "--rows",
        type=int,
        default=5,
        metavar="N",
        help="显示前 N 行的解析结果（默认 5）/ rows shown as parsed (default 5)",
    )
    check.add_argument("--json", action="store_true", help=JSON_HELP)
    check.set_defaults(handler=cmd_sources_check)

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
    p.add_argument(
        "--summary",
        action="store_true",
        help="按原因汇总：每类原因一行，含行数和示例 / one line per kind of reason, with its "
        "count and examples, the largest first",
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
    from pipeline.app import DRY_RUN, print_json
    from pipeline.progress import Progress

    if args.kind and not args.file:
        raise UsageError("--kind goes with --file (a configured source says what it holds)")
    if args.dry_run:
        app.discard_writes(DRY_RUN)
    targets = stages.sync_targets(app, args.source, args.file, args.kind or "penalties")
    worst = 0
    for target in targets:
        report = None
        if args.dry_run:
            from pipeline.sync.inspect import check_source

            report = check_source(app.config, target.source, rows=3)
            if not args.json:
                _print_source_report(report)
        with Progress(f"同步 / sync {target.name}", unit="行 rows") as bar:
            result = stages.sync(app, target, app.clock.now(), args.force, bar.update)
        if args.json:
            body = result.as_json()
            if report is not None:
                body |= {"dry_run": True, "columns": report.columns, "unmapped": report.unmapped}
            print_json(body)
        else:
            _print_sync(target.name, result)
        worst = max(worst, 1 if result.refused else 0)
    return worst


def cmd_sources_check(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.config import SourceSettings
    from pipeline.sync.inspect import check_source

    if (args.kind or args.date_order) and not args.file:
        raise UsageError("--kind and --date-order go with --file (a source says them itself)")
    if args.file:
        source = SourceSettings(
            name="file",
            path=args.file,
            records=args.kind or "penalties",
            date_order=args.date_order or "ymd",
        )
    else:
        source = app.config.settings.source(args.name)
    report = check_source(app.config, source, rows=max(args.rows, 0))
    if args.json:
        print_json(report.as_json())
    else:
        _print_source_report(report, sys.stdout)
    return 0 if report.ok else 2


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


OUT_OF_SCOPE = {
    "natural_person": "自然人",
    "no_uscc": "无统一社会信用代码",
    "entity_elsewhere": "主体不在辖区",
    "authority_elsewhere": "处罚机关不在辖区",
}
"""`pipeline.domain.routing.OUT_OF_SCOPE`'s Chinese names (kept equal by a test)."""
IDENTITY_CODES = {
    "uscc_split": "被空格分开的统一社会信用代码",
    "reg_no": "15位注册号",
    "org_code": "9位组织机构代码",
    "placeholder": "占位代码",
    "person_id": "居民身份证号",
}
"""`pipeline.domain.uscc.CODE_KINDS`' Chinese names (kept equal by a test)."""


def _print_sync(name: str, result: SyncResult) -> None:
    from pipeline.sync.reasons import group_reasons

    counts = "，".join(f"{zh} {getattr(result, key)}" for key, zh in SYNC_COUNTS)
    english = ", ".join(f"{key} {getattr(result, key)}" for key, _ in SYNC_COUNTS)
    state = "已拒绝 REFUSED" if result.refused else "已导入 applied"
    print(f"同步 {name}：{state}：{counts} / {english}", file=sys.stderr)
    if result.reason:
        print(f"  {result.reason}", file=sys.stderr)
    if result.out_of_scope_reasons:
        print(
            f"  不在辖区 / out of scope: {_counted(result.out_of_scope_reasons, OUT_OF_SCOPE)}",
            file=sys.stderr,
        )
    if result.identity_codes:
        print(
            f"  统一社会信用代码列中的其他代码 / other codes in the USCC column: "
            f"{_counted(result.identity_codes, IDENTITY_CODES)}",
            file=sys.stderr,
        )
    groups = group_reasons(result.quarantine)
    for group in groups[:20]:
        print(f"  {_group_line(group)}", file=sys.stderr)
    if len(groups) > 20:
        print(
            f"  …另有 {len(groups) - 20} 类原因 / {len(groups) - 20} more kinds of reason "
            "(credit-repair quarantine --summary)",
            file=sys.stderr,
        )


def _counted(counts: dict[str, int], names: dict[str, str]) -> str:
    return "，".join(f"{names.get(k, k)} ({k}) {n}" for k, n in counts.items())


def _group_line(group: Any) -> str:
    """`decision_date: 2000 行 rows: '…' is not a date …（例 rows 2, 3, 4, 5, 6：'2019-13-01' …）`."""
    rows = ", ".join(map(str, group.rows)) + ("…" if group.count > len(group.rows) else "")
    if group.count == 1:
        return f"第 {group.rows[0]} 行 row: {group.field or '-'}: {group.examples[0]}"
    return (
        f"{group.field or '-'}: {group.count} 行 rows: {group.reason}"
        f"（例 e.g. rows {rows}：{group.examples[0]}）"
    )


def _print_source_report(report: Any, out: Any = None) -> None:
    """`sources check` (stdout) / `sync --dry-run` (stderr), for a person writing a field_map."""
    from pipeline.sync.inspect import field_label
    from pipeline.sync.sources.fields import ORIGINS

    out = out or sys.stderr
    print(
        f"数据源 source {report.source}：{report.where}（{report.kind}，date_order "
        f"{report.date_order}）",
        file=out,
    )
    if report.not_modified:
        print("  自上次同步以来未变 / not modified since the last sync (HTTP 304)", file=out)
        return
    table(
        ("列 column", "表头 header", "字段 field", "来源 how"),
        (
            (
                c["column"],
                c["header"],
                field_label(c["field"], report.kind) + (f" [{c['unit']}]" if "unit" in c else ""),
                ORIGINS.get(c["how"], c["how"]),
            )
            for c in report.columns
        ),
        out,
    )
    unmapped = "、".join(report.unmapped) or "无 none"
    print(f"未识别的列（原样保留，可在 field_map 中指定）/ unmapped columns: {unmapped}", file=out)
    for problem in (*report.missing, *report.repeated):
        print(f"错误 error: {problem}", file=out)
    for row in report.rows:
        if row["outcome"] == "loaded":
            values = "，".join(f"{k}={v}" for k, v in row["values"].items() if v is not None)
            print(f"  第 {row['row']} 行 row：导入 loaded：{values}", file=out)
        elif row["outcome"] == "out_of_scope":
            reason = row["scope_reason"]
            print(
                f"  第 {row['row']} 行 row：不在辖区 out of scope："
                f"{OUT_OF_SCOPE.get(reason, reason)} ({reason})",
                file=out,
            )
        else:
            issues = "；".join(f"{i['field'] or '-'}: {i['reason']}" for i in row["issues"])
            print(f"  第 {row['row']} 行 row：隔离 quarantined：{issues}", file=out)
        for issue in row["issues"] if row["outcome"] == "loaded" else ():
            print(f"      警告 warning: {issue['field']}: {issue['reason']}", file=out)


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
    from pipeline.sync.reasons import group_reasons

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
    if args.summary:
        groups = group_reasons(rows)
        if args.json:
            for group in groups:
                print_json(group.as_json())
            return 0
        table(
            (
                "同步 sync",
                "来源 source",
                "级别 level",
                "字段 field",
                "行数 rows",
                "原因 reason",
                "例 examples",
            ),
            (
                (
                    g.sync_id,
                    g.source,
                    LEVELS.get(g.level, g.level),
                    g.field,
                    g.count,
                    g.reason,
                    f"rows {', '.join(map(str, g.rows))}{'…' if g.count > len(g.rows) else ''}："
                    + " | ".join(g.examples),
                )
                for g in groups
            ),
        )
        return 0
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
