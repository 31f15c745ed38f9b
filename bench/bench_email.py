"""Benchmark e-mail sending: yagmail's send(), our EmailChannel batch, a bare smtplib loop.

    .venv/bin/python bench/bench_email.py --rows 500

N notice messages (Chinese subject, text + HTML body, a 30 KB DOCX attachment named
告知书.docx) go to a local aiosmtpd server that accepts and discards them. Each measurement
runs in a fresh process against a fresh server process:

- ``baseline``: the messages pre-rendered (`render_eml`, not timed), then one smtplib
  connection and ``sendmail()`` per message — the floor for SMTP on this machine;
- ``yagmail_send``: ``yagmail.SMTP(...).send()`` per message, as its documentation shows
  it (it builds the MIME, and opens a connection and an EHLO per call);
- ``email_channel``: ``with EmailChannel(...)`` and ``send()`` per message (MIME built
  inside, one connection).

One JSON line per measurement on stdout: {"name", "rows", "seconds", "baseline_seconds",
"ratio", "peak_rss_mb", "db": null, ...} plus the server's own count of connections and
messages. `seconds` is the sending loop only (imports and set-up excluded); peak RSS is
the sending child's.
"""

from __future__ import annotations

import argparse
import json
import random
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import emit, note, report, run_child, start_smtp_sink  # noqa: E402
from pipeline.channels.base import Attachment, Message  # noqa: E402
from pipeline.channels.email import DOCX, EmailChannel, render_eml  # noqa: E402
from pipeline.config import EmailSettings  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
SENDER = "notice@example.gov.cn"
SENDER_NAME = "宝山区营商环境局"
SUBJECT = "关于信用修复的告知书（{name}）"
TEXT = "您好：\n{name}的行政处罚信息已满足信用修复条件。\n请于十个工作日内办理。\n"
HTML = "<p>您好：</p><p>{name}的行政处罚信息已满足<b>信用修复</b>条件。</p>"
NOTICE = random.Random(7).randbytes(30_000)


def messages(rows: int) -> list[Message]:
    def one(n: int) -> Message:
        name = f"双鸭山市测试{n}有限公司"
        return Message(
            key=f"rec{n}:notice:1:email",
            channel="email",
            recipient=f"contact{n}@example.com",
            recipient_name="张三",
            subject=SUBJECT.format(name=name),
            text=TEXT.format(name=name),
            html=HTML.format(name=name),
            attachments=(Attachment("告知书.docx", NOTICE, DOCX),),
        )

    return [one(n) for n in range(rows)]


# --------------------------------------------------------------------------- server (child)


def serve() -> None:
    """Print the port, serve until stdin closes, then print what was received."""
    controller, counter, port = start_smtp_sink()
    report(port=port)
    sys.stdin.read()
    controller.stop()
    report(connections=counter.connections, messages=counter.messages)


# --------------------------------------------------------------------------- workers (children)


def settings(port: int) -> EmailSettings:
    return EmailSettings(
        host="127.0.0.1",
        port=port,
        ssl=False,
        starttls=False,
        sender=SENDER,
        sender_name=SENDER_NAME,
    )


def run_baseline(port: int, batch: list[Message]) -> float:
    start = time.perf_counter()
    rendered = [(m.recipient, render_eml(m, SENDER)) for m in batch]
    note(
        f"baseline: rendering {len(batch)} messages (not timed) took {time.perf_counter() - start:.3f} s"
    )
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        for to, data in rendered:
            conn.sendmail(SENDER, [to], data)
    return time.perf_counter() - start


def run_channel(port: int, batch: list[Message]) -> float:
    start = time.perf_counter()
    with EmailChannel(settings(port)) as channel:
        for message in batch:
            channel.send(message)
    return time.perf_counter() - start


def run_yagmail(port: int, batch: list[Message]) -> float:
    import yagmail

    folder = Path(tempfile.mkdtemp())
    attachment = folder / "告知书.docx"  # yagmail takes attachments only as files
    attachment.write_bytes(NOTICE)
    yag = yagmail.SMTP(
        {SENDER: SENDER_NAME},
        host="127.0.0.1",
        port=port,
        smtp_ssl=False,
        smtp_starttls=False,
        smtp_skip_login=True,
        soft_email_validation=False,
    )
    start = time.perf_counter()
    for m in batch:
        if (
            yag.send(
                to={m.recipient: m.recipient_name},
                subject=m.subject,
                contents=[m.html],
                attachments=[str(attachment)],
            )
            is False
        ):
            raise RuntimeError("yagmail.send returned False")
    yag.close()
    return time.perf_counter() - start


WORKERS = {"baseline": run_baseline, "yagmail_send": run_yagmail, "email_channel": run_channel}


def worker(name: str, port: int, rows: int) -> None:
    seconds = WORKERS[name](port, messages(rows))
    report(seconds=seconds)


# --------------------------------------------------------------------------- parent


def measure(name: str, rows: int) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """(worker report, worker peak RSS, server counts) for one measurement."""
    server = subprocess.Popen(
        [sys.executable, SCRIPT, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = json.loads(server.stdout.readline())["port"]
        child = run_child([SCRIPT, "--worker", name, "--port", str(port), "--rows", str(rows)])
    finally:
        server.stdin.close()
        counts = json.loads(server.stdout.readline() or "{}")
        server.wait(timeout=30)
    return child.report, child.peak_rss_mb, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500, help="messages per measurement")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if args.worker:
        return worker(args.worker, args.port, args.rows)
    note(f"{args.rows} messages per measurement, each to a fresh local aiosmtpd (a sink)")
    base, base_rss, base_counts = measure("baseline", args.rows)
    for name in ("baseline", "yagmail_send", "email_channel"):
        result, rss, counts = (
            (base, base_rss, base_counts) if name == "baseline" else measure(name, args.rows)
        )
        emit(
            name,
            args.rows,
            result["seconds"],
            base["seconds"],
            rss,
            None,  # type: ignore[arg-type]
            server_connections=counts.get("connections"),
            server_messages=counts.get("messages"),
        )


if __name__ == "__main__":
    main()
