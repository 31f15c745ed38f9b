"""notices plan, dispatch, outbox, preview."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pipeline import stages
from pipeline.app import App, print_json
from pipeline.channels.base import Message
from pipeline.clock import parse_now
from pipeline.config.notices import KINDS, ChannelName
from pipeline.db.locks import write_lock
from pipeline.db.models import Record, table_of
from pipeline.delivery.dispatcher import DispatchResult, to_message
from pipeline.errors import UsageError
from pipeline.ledger.state import find_record
from pipeline.notices.context import sample_row
from pipeline.notices.outbox import REQUEUE_STATES, STATES, counts, listing, requeue
from pipeline.notices.planner import Occurrence
from pipeline.wiring import make_planner


def register(commands: Any) -> None:
    p = commands.add_parser("notices", help="repair notices and reminders")
    sub = p.add_subparsers(dest="notices_command", metavar="ACTION", required=True)
    plan = sub.add_parser("plan", help="put every notice due today into the outbox")
    plan.add_argument(
        "--dry-run", action="store_true", help="print what would be planned; write nothing"
    )
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(handler=cmd_plan)

    p = commands.add_parser("dispatch", help="send what the outbox holds")
    p.add_argument("--limit", type=int, metavar="N", help="at most N messages")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_dispatch)

    p = commands.add_parser("outbox", help="list outbox messages")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_outbox)
    actions = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=False)
    rq = actions.add_parser(
        "requeue", help="send again messages a person checked did not arrive (audited)"
    )
    rq.add_argument(
        "--state", dest="requeue_state", choices=REQUEUE_STATES, required=True, metavar="STATE"
    )
    rq.add_argument("--before", metavar="T", help="only those last changed before T (ISO)")
    rq.add_argument("--id", dest="ids", type=int, action="append", metavar="N", help="only row N")
    rq.add_argument("--actor", default="cli", help="who checked (for the audit trail)")
    rq.add_argument("--json", action="store_true")
    rq.set_defaults(handler=cmd_outbox_requeue)

    p = commands.add_parser("preview", help="render one notice without sending it")
    p.add_argument(
        "--decision-no", metavar="X", help="a record's decision number (default: sample data)"
    )
    p.add_argument("--authority", metavar="A")
    p.add_argument(
        "--kind", choices=[k for k in KINDS if k != "department_digest"], default="repair_notice"
    )
    p.add_argument("--channel", choices=["email", "sms", "docx"], default="email")
    p.add_argument(
        "--out", metavar="PATH", help="write the .eml / .txt / .docx here instead of stdout"
    )
    p.set_defaults(handler=cmd_preview)


def cmd_plan(app: App, args: argparse.Namespace) -> int:
    result = stages.plan_notices(app, args.dry_run)
    if args.json:
        print_json(result.as_json())
    else:
        verb = "would plan" if args.dry_run else "planned"
        print(
            f"notices {verb} {result.planned} ({result.by_kind}); already planned {result.already_planned}, "
            f"no address {result.no_address}",
            file=sys.stderr,
        )
        for m in result.messages:
            print(f"  {m['kind']:22} {m['channel']:6} {m['subject']}", file=sys.stderr)
    return 0


def cmd_dispatch(app: App, args: argparse.Namespace) -> int:
    if args.dry_run:
        due = [
            r
            for r in listing(app.engine)
            if r["state"] in ("pending", "retry") and r["next_attempt_at"] <= app.clock.now()
        ]
        due = due[: args.limit] if args.limit else due
        for row in due:
            line = {
                "would_send": row["key"],
                "kind": row["kind"],
                "channel": row["channel"],
                "attempts": row["attempts"],
            }
            print_json(line) if args.json else print(
                f"would send {row['channel']:6} {row['kind']:22} {row['key']}", file=sys.stderr
            )
        return 0
    result = stages.dispatch(app, args.limit)
    for warning in not_sent_lines(result, app.config.settings.paths.outbox_dir):
        print(warning, file=sys.stderr)
    if args.json:
        print_json(result.as_json())
    else:
        print(f"dispatch: {result.as_json()}", file=sys.stderr)
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
    rows = listing(app.engine, args.state, args.kind)
    for row in rows:
        if args.json:
            print_json(row)
        else:
            print(
                f"{row['id']:6} {row['state']:9} {row['channel']:6} {row['kind']:22} {row['key']}"
                f"{'  ' + row['last_error'] if row['last_error'] else ''}"
            )
    if not args.json:
        print(f"outbox: {counts(app.engine)}", file=sys.stderr)
    return 0


def cmd_outbox_requeue(app: App, args: argparse.Namespace) -> int:
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
        print(f"wrote {args.out}", file=sys.stderr)
    elif args.channel == "docx":
        raise UsageError("a DOCX is binary: give --out FILE.docx")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def _preview_row(app: App, args: argparse.Namespace) -> dict[str, Any]:
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
