"""eligibility, ledger show, ledger set."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from pipeline import stages
from pipeline.app import App, print_json
from pipeline.commands.ledger_excel import register_ledger_actions
from pipeline.db.locks import write_lock
from pipeline.errors import UsageError
from pipeline.ledger.eligibility import Evaluator, evaluate_file, stored
from pipeline.ledger.state import (
    CONFIRMATIONS,
    NOTIFY_METHODS,
    LedgerUpdate,
    apply_update,
    find_record,
    ledger_flags,
    open_entries,
    progress_names,
)
from pipeline.progress import Progress

STATUSES = ("not_published", "expired", "non_repairable", "in_min_period", "repairable", "error")


def register(commands: Any) -> None:
    p = commands.add_parser("eligibility", help="evaluate records as of --now")
    p.add_argument(
        "--snapshot", metavar="PATH", help="evaluate a snapshot file, without the database"
    )
    p.add_argument("--department", metavar="CODE")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--json", action="store_true", help="one JSON object per record on stdout")
    p.set_defaults(handler=cmd_eligibility)

    p = commands.add_parser("ledger", help="department sub-ledgers (附件3/附件4)")
    sub = p.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="list ledger entries")
    show.add_argument("--department", metavar="CODE")
    show.add_argument("--status", choices=STATUSES)
    show.add_argument("--all", action="store_true", help="include closed entries")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_ledger_show)

    st = sub.add_parser("set", help="record progress, willingness, plans for one entry")
    st.add_argument("decision_no", metavar="DECISION_NO")
    st.add_argument(
        "--authority", metavar="A", help="needed when several authorities used the number"
    )
    st.add_argument("--willing", choices=["yes", "no", "unknown"])
    st.add_argument("--progress", type=int, metavar="N")
    st.add_argument("--planned", type=_date, metavar="DATE", help="planned completion date")
    st.add_argument("--remarks", metavar="TEXT")
    st.add_argument("--responsible", metavar="TEXT", help="responsible person and phone")
    st.add_argument("--repair-effect", metavar="TEXT", help="list entries: 修复效果 (执行金额等)")
    st.add_argument(
        "--commitment", type=_date, metavar="DATE", help="承诺即修复: commitment received on DATE"
    )
    st.add_argument(
        "--follow-up", type=_date, metavar="DATE", help="follow-up date for documents to follow"
    )
    st.add_argument(
        "--confirm-receipt",
        action="store_true",
        help="the company confirmed it received the notice (知晓)",
    )
    st.add_argument(
        "--confirm",
        choices=list(CONFIRMATIONS),
        help="待核实: why the record left the snapshot (repaired 已修复, revoked 决定已撤销, "
        "data_gap 数据缺失, other 其他 with --remarks); expired: a penalty shown past its "
        "period was taken down. Closes the entry",
    )
    st.add_argument(
        "--method",
        choices=list(NOTIFY_METHODS),
        help="with --progress 1: how the notice was delivered (phone 电话, paper 纸质送达, "
        "onsite 现场, other 其他)",
    )
    st.add_argument("--actor", default="cli", help="who makes the change (for the audit trail)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_ledger_set)
    register_ledger_actions(sub)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_eligibility(app: App, args: argparse.Namespace) -> int:
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
        with Progress("eligibility", unit="records") as bar:
            result = stages.evaluate(app, progress=None if args.json else bar.update)
        if not args.json:
            done = result.recompute
            print(
                f"evaluated {done.evaluated} records as of {app.clock.today()}: {done.by_status}",
                file=sys.stderr,
            )
        lines = stored(app.engine, args.department, args.status)
    for line in lines:
        if args.json:
            print_json(line)
        else:
            _print_line(line)
    return 0


def _print_line(line: dict[str, Any]) -> None:
    print(
        f"{line['decision_no']}\t{line['entity_name']}\t{line['status']}\t"
        f"repairable_from={line['repairable_from']}\tremoval_on={line['removal_on']}\t{line['reason']}"
    )


def cmd_ledger_show(app: App, args: argparse.Namespace) -> int:
    with app.engine.connect() as conn:
        rows = open_entries(conn, args.department, args.status, include_closed=args.all)
    for row in rows:
        if args.json:
            print_json(_ledger_json(row))
        else:
            names = progress_names(row["kind"])
            print(
                f"{row['department_code']:6} {'绿' if row['green_channel'] else ' '} {row['decision_no']}\t{row['entity_name']}\t"
                f"{row['status'] or '-'}\t{row['progress']} {names.get(row['progress'], '')}\t意愿:{row['willingness']}\t"
                f"计划:{row['planned_on'] or '-'}"
            )
    return 0


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
    "invalid_row_id",
)


def _ledger_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in LEDGER_FIELDS}
    out["progress_name"] = progress_names(row["kind"]).get(row["progress"])
    out["flags"] = ledger_flags(row)
    return out


def cmd_ledger_set(app: App, args: argparse.Namespace) -> int:
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
        text = ", ".join(f"{k}: {o} → {n}" for k, (o, n) in diff.items()) or "nothing to change"
        print(f"{row['decision_no']} ({row['authority']}): {text}", file=sys.stderr)
    return 0
