"""eligibility, ledger show, ledger set."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands.ledger_excel import register_ledger_actions
from pipeline.commands.text import check_department, counts_text, label, labels, table
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.app import App

DRY_RUN_HELP = (
    "模拟：按 --now 计算并显示，不写入数据库 / compute and print as of --now; write nothing"
)
JSON_HELP = "每条记录一个 JSON 对象输出到标准输出 / one JSON object per record on stdout"
CONFIRMATIONS = ("repaired", "revoked", "data_gap", "other", "expired")
NOTIFY_METHODS = ("phone", "paper", "onsite", "other")
"""`pipeline.ledger.state.CONFIRMATIONS` / `NOTIFY_METHODS` (kept equal by
tests/test_cli_text.py), here so that building the parser imports no database module."""
STATUSES = ("not_published", "expired", "non_repairable", "in_min_period", "repairable", "error")


STATUS_HELP = (
    "只看某一状态：repairable 可修复、in_min_period 最短公示期内、non_repairable 不可提前修复、"
    "expired 已届满、not_published 不予公示、error 计算失败 / only this status"
)
DEPARTMENT_HELP = "只看某一部门（departments.yaml 的 code）/ one department (its code)"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "eligibility",
        help="按 --now 计算每条处罚的公示期与状态 / evaluate records as of --now",
    )
    p.add_argument(
        "--snapshot",
        metavar="PATH",
        help="直接计算一个快照文件，不用数据库 / evaluate a snapshot file, without the database",
    )
    p.add_argument("--department", metavar="CODE", help=DEPARTMENT_HELP)
    p.add_argument("--status", choices=STATUSES, help=STATUS_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.set_defaults(handler=cmd_eligibility)

    p = commands.add_parser(
        "ledger", help="部门台账（附件3/附件4）/ department sub-ledgers (附件3/附件4)"
    )
    sub = p.add_subparsers(
        dest="ledger_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    show = sub.add_parser(
        "show",
        help="列出台账条目（绿色通道在前）/ list ledger entries, green channel first",
    )
    show.add_argument("--department", metavar="CODE", help=DEPARTMENT_HELP)
    show.add_argument("--status", choices=STATUSES, help=STATUS_HELP)
    show.add_argument(
        "--all", action="store_true", help="包括已销账的条目 / include closed entries"
    )
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    show.add_argument(
        "--dry-run",
        action="store_true",
        help="模拟：先按 --now 计算再显示，不写入数据库 / evaluate as of --now, show; write nothing",
    )
    show.set_defaults(handler=cmd_ledger_show)

    st = sub.add_parser(
        "set",
        help="更新一条台账：进展、意愿、计划等（自动留痕）/ "
        "record progress, willingness, plans for one entry (audited)",
    )
    st.add_argument(
        "decision_no", metavar="DECISION_NO", help="处罚决定书文号 / the decision number"
    )
    st.add_argument(
        "--authority",
        metavar="A",
        help="处罚机关（同一文号有多个机关时需要）/ needed when several authorities used the number",
    )
    st.add_argument(
        "--willing",
        choices=["yes", "no", "unknown"],
        help="修复意愿：yes 是、no 否、unknown 未知 / willing to repair",
    )
    st.add_argument(
        "--progress",
        type=int,
        metavar="N",
        help="进展：1 已告知、2 处罚整改、3 已申请、4 已完成（名单另有 5 已移出）/ progress code",
    )
    st.add_argument(
        "--planned", type=_date, metavar="DATE", help="计划完成修复时间 / planned completion date"
    )
    st.add_argument("--remarks", metavar="TEXT", help="备注 / remarks")
    st.add_argument(
        "--responsible", metavar="TEXT", help="责任人及电话 / responsible person and phone"
    )
    st.add_argument(
        "--repair-effect",
        metavar="TEXT",
        help="名单条目的修复效果（执行金额等）/ list entries: 修复效果",
    )
    st.add_argument(
        "--commitment",
        type=_date,
        metavar="DATE",
        help="承诺即修复：收到承诺书的日期 / 承诺即修复: commitment received on DATE",
    )
    st.add_argument(
        "--follow-up",
        type=_date,
        metavar="DATE",
        help="容缺材料的跟进日期 / follow-up date for documents to follow",
    )
    st.add_argument(
        "--confirm-receipt",
        action="store_true",
        help="企业已确认收到告知书（知晓）/ the company confirmed it received the notice",
    )
    st.add_argument(
        "--confirm",
        choices=list(CONFIRMATIONS),
        help="待核实的结论并销账：repaired 已修复、revoked 决定已撤销、data_gap 数据缺失、"
        "other 其他（须 --remarks）；expired：超期仍公示的处罚已撤下 / why the record left "
        "the snapshot (or, expired, a penalty shown past its period was taken down); closes it",
    )
    st.add_argument(
        "--method",
        choices=list(NOTIFY_METHODS),
        help="与 --progress 1 同用：送达方式 phone 电话、paper 纸质送达、onsite 现场、other 其他 / "
        "with --progress 1: how the notice was delivered",
    )
    st.add_argument(
        "--actor",
        default="cli",
        help="修改人（写入留痕）/ who makes the change (for the audit trail)",
    )
    st.add_argument("--json", action="store_true", help="以 JSON 输出 / the change as JSON")
    st.set_defaults(handler=cmd_ledger_set)
    register_ledger_actions(sub)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _departments(app: App) -> dict[str, str]:
    return {d.code: d.name for d in app.config.departments.departments}


def cmd_eligibility(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import DRY_RUN, print_json
    from pipeline.ledger.eligibility import Evaluator, evaluate_file, stored
    from pipeline.ledger.state import STATUS_NAMES

    if args.dry_run:
        app.discard_writes(DRY_RUN)
    if args.snapshot:
        if args.department or args.status:
            raise UsageError("--department and --status filter the database, not a --snapshot file")
        lines = evaluate_file(
            app.config,
            Evaluator.from_config(app.config, app.calendar),
            Path(args.snapshot),
            app.clock.today(),
        )
    else:
        check_department(args.department, _departments(app))
        result = stages.evaluate(app)  # a bar on a terminal (stderr), progress logs off one
        if not args.json:
            done = result.recompute
            print(
                f"按 {app.clock.today()} 计算 {done.evaluated} 条：{counts_text(done.by_status, STATUS_NAMES)}"
                f" / evaluated {done.evaluated} records as of {app.clock.today()}",
                file=sys.stderr,
            )
        lines = stored(app.engine, args.department, args.status)
    if args.json:
        for line in lines:
            print_json(line)
        return 0
    table(
        (
            "文号 decision_no",
            "企业名称 entity",
            "状态 status",
            "可修复日期 repairable_from",
            "撤下日期 removal_on",
            "说明 reason",
        ),
        (
            (
                line["decision_no"],
                line["entity_name"],
                label(line["status"], STATUS_NAMES),
                line["repairable_from"],
                line["removal_on"],
                line["reason"],
            )
            for line in lines
        ),
    )
    return 0


WILLINGNESS = {"yes": "是", "no": "否", "unknown": "未知"}


def cmd_ledger_show(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import DRY_RUN, print_json
    from pipeline.ledger.state import FLAGS, STATUS_NAMES, ledger_flags, open_entries

    check_department(args.department, _departments(app))
    if args.dry_run:
        app.discard_writes(DRY_RUN)
    if app.what_if:  # the ledger as it would stand on --now: evaluated first, in the sandbox
        stages.evaluate(app)
    with app.engine.connect() as conn:
        rows = open_entries(conn, args.department, args.status, include_closed=args.all)
    if args.json:
        for row in rows:
            print_json(_ledger_json(row))
        return 0
    table(
        (
            "部门",
            "绿色通道",
            "文号 decision_no",
            "企业名称 entity",
            "状态 status",
            "进展 progress",
            "意愿",
            "计划完成",
            "提示 flags",
        ),
        (
            (
                row["department_code"],
                "绿" if row["green_channel"] else "",
                row["decision_no"],
                row["entity_name"],
                label(row["status"], STATUS_NAMES),
                f"{row['progress']} {_progress_name(row)}",
                WILLINGNESS.get(row["willingness"], row["willingness"]),
                row["planned_on"],
                labels(ledger_flags(row), FLAGS),
            )
            for row in rows
        ),
    )
    return 0


def _progress_name(row: dict[str, Any]) -> str:
    from pipeline.ledger.state import progress_names

    return progress_names(row["kind"]).get(row["progress"], "")


LEDGER_FIELDS = (
    "kind",
    "decision_no",
    "authority",
    "entity_name",
    "uscc",
    "department_code",
    "status",
    "repairable_from",
    "removal_on",
    "progress",
    "willingness",
    "planned_on",
    "responsible",
    "remarks",
    "repair_effect",
    "green_channel",
    "green_reason",
    "commitment_on",
    "follow_up_on",
    "notified_at",
    "notified_channel",
    "receipt_confirmed_at",
    "closed_on",
    "close_reason",
    "list_name",
    "route_note",
    "verify_reason",
    "overdue_display_since",
    "restrictions",
    "notified_by",
    "notified_method",
    "viewed_at",
    "company_answer",
    "company_answer_at",
    "help_phone",
    "invalid_row_id",
)


def _ledger_json(row: dict[str, Any]) -> dict[str, Any]:
    from pipeline.ledger.state import ledger_flags

    out = {k: row[k] for k in LEDGER_FIELDS}
    out["progress_name"] = _progress_name(row) or None
    out["flags"] = ledger_flags(row)
    return out


def cmd_ledger_set(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.db.locks import write_lock
    from pipeline.ledger.state import LedgerUpdate, apply_update, find_record

    upd = LedgerUpdate(
        willingness=args.willing,
        progress=args.progress,
        planned_on=args.planned,
        remarks=args.remarks,
        responsible=args.responsible,
        repair_effect=args.repair_effect,
        commitment_on=args.commitment,
        follow_up_on=args.follow_up,
        receipt_confirmed=args.confirm_receipt,
        confirm=args.confirm,
        notified_method=args.method,
    )
    if all(v in (None, False) for k, v in upd.__dict__.items() if k != "extra"):
        raise UsageError(
            "ledger set needs at least one change (--willing, --progress, --planned, --remarks, ...)"
        )
    with app.engine.begin() as conn:
        write_lock(conn, "ledger set")
        row = find_record(conn, args.decision_no, args.authority)
        diff = apply_update(
            conn,
            row,
            upd,
            app.clock.now(),
            "cli",
            args.actor,
            app.config.settings.green_channel.follow_up_days,
        )
    if args.json:
        print_json(
            {
                "decision_no": row["decision_no"],
                "authority": row["authority"],
                "changed": {k: {"old": o, "new": n} for k, (o, n) in diff.items()},
            }
        )
    else:
        text = (
            ", ".join(f"{k}: {o} → {n}" for k, (o, n) in diff.items())
            or "无变化 / nothing to change"
        )
        print(f"{row['decision_no']} ({row['authority']}): {text}", file=sys.stderr)
    return 0
