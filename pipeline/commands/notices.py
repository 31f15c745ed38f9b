"""notices plan, dispatch, outbox, preview."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands.text import counts_text, table
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.channels.base import Message
    from pipeline.delivery.dispatcher import DispatchResult

KINDS = (
    "repair_notice",
    "eligibility_reminder",
    "follow_up",
    "list_notice",
    "department_digest",
    "department_reminder",
    "escalation",
    "monthly_report",
)
STATES = (
    "pending",
    "sending",
    "sent",
    "retry",
    "failed",
    "unknown",
    "cancelled",
    "written",
    "claimed",
)
REQUEUE_STATES = ("unknown", "written", "failed")
"""`pipeline.config.notices.KINDS` and `pipeline.notices.outbox.STATES`/`REQUEUE_STATES` (kept equal by
tests/test_cli_text.py), here so that building the parser imports neither."""
STATE_NAMES = {
    "pending": "待发送",
    "claimed": "已领取",
    "sending": "发送中",
    "retry": "待重试",
    "sent": "已发送",
    "written": "仅写入文件",
    "failed": "失败",
    "unknown": "结果未知",
    "cancelled": "已取消",
}


def register(commands: Any) -> None:
    p = commands.add_parser("notices", help="告知书与提醒 / repair notices and reminders")
    sub = p.add_subparsers(
        dest="notices_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    plan = sub.add_parser(
        "plan",
        help="把今天到期的通知放入发件箱（有从未计算的记录时先计算）/ put every notice due "
        "today into the outbox (evaluating first when a record was never evaluated)",
    )
    plan.add_argument(
        "--dry-run",
        action="store_true",
        help="只显示将要计划的通知，不写入 / print what would be planned; write nothing",
    )
    plan.add_argument("--json", action="store_true", help="以 JSON 输出 / the result as JSON")
    plan.set_defaults(handler=cmd_plan)

    p = commands.add_parser("dispatch", help="发送发件箱中的通知 / send what the outbox holds")
    p.add_argument("--limit", type=int, metavar="N", help="最多发送 N 条 / at most N messages")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="只显示将要发送的通知，不发送 / print what would be sent; send nothing",
    )
    p.add_argument("--json", action="store_true", help="以 JSON 输出 / the result as JSON")
    p.set_defaults(handler=cmd_dispatch)

    p = commands.add_parser("outbox", help="列出发件箱中的通知 / list outbox messages")
    p.add_argument(
        "--state",
        choices=STATES,
        help="只看某一状态（unknown 结果未知，需人工核实）/ only this state",
    )
    p.add_argument("--kind", choices=KINDS, help="只看某一类通知 / only this kind of notice")
    p.add_argument(
        "--json", action="store_true", help="每条一个 JSON 对象 / one JSON object per message"
    )
    p.set_defaults(handler=cmd_outbox)
    actions = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=False)
    rq = actions.add_parser(
        "requeue",
        help="人工核实未送达后重新发送（留痕）/ "
        "send again messages a person checked did not arrive (audited)",
    )
    rq.add_argument(
        "--state",
        dest="requeue_state",
        choices=REQUEUE_STATES,
        required=True,
        metavar="STATE",
        help="要重发的状态：结果未知、仅写入文件或失败 / the state to send again: "
        "unknown, written (to a file only) or failed",
    )
    rq.add_argument(
        "--before",
        metavar="T",
        help="仅限 T 之前最后变更的 / only those last changed before T (ISO)",
    )
    rq.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        metavar="N",
        help="仅限编号 N（可重复）/ only row N (repeatable)",
    )
    rq.add_argument(
        "--actor", default="cli", help="核实人（审计记录）/ who checked (for the audit trail)"
    )
    rq.add_argument("--json", action="store_true", help="JSON 输出 / print JSON on stdout")
    rq.set_defaults(handler=cmd_outbox_requeue)

    p = commands.add_parser(
        "preview", help="生成一份通知供预览，不发送 / render one notice without sending it"
    )
    p.add_argument(
        "--decision-no",
        metavar="X",
        help="某条记录的文号（默认：样例数据）/ a record's decision number (default: sample data)",
    )
    p.add_argument(
        "--authority",
        metavar="A",
        help="处罚机关（文号重复时）/ the authority, if the number repeats",
    )
    p.add_argument(
        "--kind",
        choices=[k for k in KINDS if k != "department_digest"],
        default="repair_notice",
        help="通知类别（默认告知书）/ the kind of notice (default repair_notice)",
    )
    p.add_argument(
        "--channel",
        choices=["email", "sms", "docx"],
        default="email",
        help="email 邮件、sms 短信、docx 纸质告知书 / the channel's form",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="写入 .eml / .txt / .docx 文件而不是标准输出 / write the file here instead of stdout",
    )
    p.set_defaults(handler=cmd_preview)


def cmd_plan(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import DRY_RUN, print_json
    from pipeline.ledger.eligibility import never_evaluated
    from pipeline.summaries import KINDS as KIND_NAMES

    if args.dry_run:
        app.discard_writes(DRY_RUN)  # the evaluation below is kept no more than the plan
    waiting = never_evaluated(app.engine)
    if waiting:  # a notice says dates: none is planned on a record never evaluated
        evaluated = stages.evaluate(app).recompute.evaluated
        print(
            f"先按 {app.clock.today()} 计算了 {evaluated} 条记录（其中 {waiting} 条从未计算）/ "
            f"evaluated {evaluated} records as of {app.clock.today()} first ({waiting} never were)",
            file=sys.stderr,
        )
    result = stages.plan_notices(app, args.dry_run)
    if args.json:
        print_json(result.as_json())
        return 0
    verb = "将计划 / would plan" if args.dry_run else "已计划 / planned"
    print(
        f"通知{verb} {result.planned}（{counts_text(result.by_kind, KIND_NAMES)}）；"
        f"此前已计划 {result.already_planned}，无联系方式 {result.no_address} / "
        f"already planned {result.already_planned}, no address {result.no_address}",
        file=sys.stderr,
    )
    if not result.planned:
        print(
            why_nothing(result.considered, result.already_planned, result.no_address),
            file=sys.stderr,
        )
    for m in result.messages:
        print(f"  {m['kind']:22} {m['channel']:6} {m['subject']}", file=sys.stderr)
    return 0


def why_nothing(considered: int, already: int, no_address: int) -> str:
    """Why a plan planned nothing, said plainly."""
    if not considered:
        return (
            "没有计划任何通知：台账中没有未销账的记录，请先导入快照（credit-repair sync）/ "
            "nothing planned: the ledger has no open record; load a snapshot first (sync)"
        )
    return (
        f"没有计划任何通知：{considered} 条记录中，{already} 条此前已计划，{no_address} 条缺少联系方式"
        "（credit-repair contacts import），其余今天没有到期的通知 / nothing planned: of "
        f"{considered} records {already} were planned before, {no_address} have no address, "
        "the others have no notice due today"
    )


def cmd_dispatch(app: App, args: argparse.Namespace) -> int:
    from pipeline import stages
    from pipeline.app import print_json
    from pipeline.notices.outbox import listing
    from pipeline.progress import Progress
    from pipeline.summaries import job_summary

    if args.dry_run:
        due = [
            r
            for r in listing(app.engine)
            if r["state"] in ("pending", "retry") and r["next_attempt_at"] <= app.clock.now()
        ]
        due = due[: args.limit] if args.limit else due
        if not due and not args.json:
            print("没有待发送的通知 / nothing due to send", file=sys.stderr)
        for row in due:
            line = {
                "would_send": row["key"],
                "kind": row["kind"],
                "channel": row["channel"],
                "attempts": row["attempts"],
            }
            print_json(line) if args.json else print(
                f"将发送 / would send {row['channel']:6} {row['kind']:22} {row['key']}",
                file=sys.stderr,
            )
        return 0
    with Progress("发送 / dispatch", unit="条 messages") as bar:
        result = stages.dispatch(app, args.limit, progress=bar)
    for warning in not_sent_lines(result, app.config.settings.paths.outbox_dir):
        print(warning, file=sys.stderr)
    if args.json:
        print_json(result.as_json())
    else:
        print(f"发送 / dispatch：{job_summary('dispatch', result.as_json())}", file=sys.stderr)
    return 0


CONFIG_KEY = {"email": ("邮件", "e-mail", "email.host"), "sms": ("短信", "SMS", "sms.provider")}


def not_sent_lines(result: DispatchResult, outbox_dir: str) -> list[str]:
    """One line per channel whose messages went to files: nobody received them."""
    lines = []
    for channel, n in sorted(result.written_by_channel.items()):
        zh, en, key = CONFIG_KEY.get(channel, (channel, channel, channel))
        lines.append(
            f"{zh}未配置（{key}）：{n} 条通知仅写入 {outbox_dir}/{channel}，未发送，企业未被告知 / "
            f"{en} is not configured ({key}): {n} notices written to {outbox_dir}/{channel}, not sent"
        )
    return lines


def cmd_outbox(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.notices.outbox import counts, listing

    rows = listing(app.engine, args.state, args.kind)
    if args.json:
        for row in rows:
            print_json(row)
        return 0
    table(
        ("编号 id", "状态 state", "渠道 channel", "类别 kind", "标识 key"),
        (
            (
                row["id"],
                f"{STATE_NAMES.get(row['state'], row['state'])} ({row['state']})",
                row["channel"],
                row["kind"],
                row["key"] + (f"  {row['last_error']}" if row["last_error"] else ""),
            )
            for row in rows
        ),
    )
    print(f"发件箱 / outbox：{counts_text(counts(app.engine), STATE_NAMES)}", file=sys.stderr)
    return 0


def cmd_outbox_requeue(app: App, args: argparse.Namespace) -> int:
    from pipeline.app import print_json
    from pipeline.clock import parse_now
    from pipeline.db.locks import write_lock
    from pipeline.notices.outbox import requeue

    before = None
    if args.before:
        try:
            before = parse_now(args.before, app.config.settings.tz).now()
        except UsageError:
            raise UsageError(
                f"--before {args.before!r} is not an ISO date or date-time (e.g. 2026-12-21)"
            ) from None
    with app.engine.begin() as conn:
        write_lock(conn, "outbox requeue")
        ids = requeue(conn, args.requeue_state, before, args.ids, args.actor, app.clock.now())
    if args.json:
        print_json({"requeued": len(ids), "ids": ids, "from": args.requeue_state})
    else:
        print(
            f"outbox: {len(ids)} {args.requeue_state} message(s) due again, sent by the next "
            f"dispatch: {', '.join(map(str, ids)) or 'none'}",
            file=sys.stderr,
        )
    return 0


def cmd_preview(app: App, args: argparse.Namespace) -> int:
    from pipeline.config.notices import ChannelName
    from pipeline.delivery.dispatcher import to_message
    from pipeline.notices.planner import Occurrence
    from pipeline.wiring import make_planner

    planner = make_planner(app)
    row = _preview_row(app, args)
    contact = {"email": "preview@example.org", "phone": "13800000000", "contact_name": "预览"}
    channel: ChannelName = "sms" if args.channel == "sms" else "email"
    phase = "before" if args.kind == "eligibility_reminder" else "initial"
    planned = planner.message(
        row, Occurrence(args.kind, "preview", phase), contact, app.clock.today(), channel
    )
    assert planned is not None
    outbox_row = {
        "key": planned.key,
        "channel": planned.channel,
        "recipient": planned.recipient,
        "recipient_name": planned.recipient_name,
        "payload": planned.payload,
        "created_at": app.clock.now(),
    }
    message = to_message(outbox_row)
    data = _preview_bytes(app, args.channel, message)
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"已写入 / wrote {args.out}", file=sys.stderr)
    elif args.channel == "docx":
        raise UsageError("a DOCX is binary: give --out FILE.docx")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def _preview_row(app: App, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    from pipeline.db.models import Record, table_of
    from pipeline.ledger.state import find_record
    from pipeline.notices.context import sample_row

    if not args.decision_no:
        return sample_row(app.config, kind="list" if args.kind == "list_notice" else "penalty")
    with app.engine.connect() as conn:
        found = find_record(conn, args.decision_no, args.authority)
        row = dict(
            conn.execute(select(table_of(Record)).where(table_of(Record).c.id == found["id"]))
            .mappings()
            .one()
        )
    if row["kind"] == "penalty" and row["status"] in (None, "error"):
        why = row["status_reason"] or "run `credit-repair eligibility` first"
        raise UsageError(
            f"{row['decision_no']} ({row['authority']}) has no evaluated dates, so no notice can "
            f"be written for it: {why}"
        )
    return row


def _preview_bytes(app: App, channel: str, message: Message) -> bytes:
    if channel == "docx":
        if not message.attachments:
            raise UsageError("this kind of notice has no DOCX (only repair_notice does)")
        return bytes(message.attachments[0].content)
    if channel == "sms":
        return (message.text + "\n").encode("utf-8")
    from pipeline.channels.email import render_eml, sender_address

    email = app.config.settings.email
    return render_eml(
        message,
        sender_address(email.sender or email.user or "credit-repair@localhost", email.sender_name),
    )
