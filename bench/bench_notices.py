"""Benchmark notices: plan, then dispatch N notices, against a bare smtplib loop.

    .venv/bin/python bench/bench_notices.py --rows 10000 --db both [--profile]

N in-scope penalties (`tests.helpers.penalty`: one repair notice each) and one contact per
entity — 90 % with an e-mail address (→ e-mail with the DOCX notice attached), every
10th with a phone number only (→ SMS through the signed webhook) — are synced, their
contacts imported and eligibility computed through the CLI (set-up, not timed). Then,
per database (SQLite file, throwaway PostgreSQL), each step in a fresh process, against
a fresh server process (aiosmtpd that accepts and discards + a keep-alive HTTP/1.1 SMS
webhook that answers 200 ``{"id": …}``), so the measured process's CPU is its own:

- plan: ``stages.plan_notices(app)`` (template rendering, the DOCX rendering, the outbox
  INSERTs with the DOCX in the payload), timed (wall and CPU);
- ``baseline`` (before): the same messages pre-rendered from the planned outbox rows (the
  e-mails as the exact bytes `render_eml` gives, the SMS as the exact signed webhook
  bodies; not timed), then one smtplib connection and ``sendmail()`` per e-mail, and the
  SMS bodies POSTed over one keep-alive http.client connection — timed. No database;
- dispatch: ``stages.dispatch(app)`` (claims, the record re-check, the MIME, SMTP / HTTP,
  the per-message outcome and ledger writes), timed (wall and CPU);
- ``baseline`` (after): the same, pre-rendered from the rows the dispatch sent.

Those are the stages the CLI and the jobs call (`pipeline.stages`). Not timed: process
start, imports, config loading, the first DB connection. The machine these figures come
from is shared and its load drifts within a minute: the baseline of a line is the mean
of the two around the dispatch (each is in the line too).

The business clock stands still under ``--now``, so the bench config raises
``email.rate_per_minute``, ``sms.rate_per_minute`` and ``sms.daily_cap_per_number``;
``--now`` is a working day at 09:00, inside the SMS allowed hours.

Two JSON lines per database on stdout, each {"name", "rows", "seconds",
"baseline_seconds", "ratio", "peak_rss_mb", "db", ..., "messages_per_s",
"baseline_messages_per_s", "rate_share", "target_rate_share", "ok"}; `rows` is the
number of messages sent:

- ``notices_end_to_end``: plan + dispatch (as before the split; adds ``plan_seconds``,
  ``dispatch_seconds`` and their CPU seconds). Reported, target 50 %.
- ``notices_dispatch``: the dispatch stage alone (``seconds``; ``cpu_seconds``), with the
  plan's figures beside it. Target: messages_per_s ≥ 80 % of baseline_messages_per_s
  (``--check`` exits 1 when it is missed).

``--profile`` writes ``bench/out/notices_<db>_plan.prof`` and ``…_dispatch.prof``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    OUT_DIR,
    emit,
    note,
    postgres,
    report,
    run_child,
    sqlite_url,
    start_smtp_sink,
    timed,
)

SCRIPT = str(Path(__file__).resolve())
NOW = "2026-11-27T09:00"  # a Friday, 09:00 Beijing: a working day, outside SMS quiet hours
SMS_EVERY = 10
"""Every SMS_EVERY-th entity has a phone number and no e-mail address."""
TARGET = 0.8
"""The dispatch stage alone: ≥ 80 % of the bare loop's message rate (issue 13)."""
END_TO_END_TARGET = 0.5
"""Plan + dispatch (the figure before the split; planning renders every DOCX)."""
SECRET = "bench-secret"
UNLIMITED = 10**9
T = TypeVar("T")


# --------------------------------------------------------------------------- servers (own process)


def serve() -> None:
    """aiosmtpd + an SMS webhook; print the ports, serve until stdin closes, print the counts."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    controller, counter, smtp_port = start_smtp_sink()
    sms = {"requests": 0, "connections": 0}
    lock = threading.Lock()

    class Webhook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway would
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # status, headers and body in one write (flushed per request)

        def setup(self) -> None:
            super().setup()
            with lock:
                sms["connections"] += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                sms["requests"] += 1
            reply = json.dumps({"id": json.loads(body)["id"][-16:]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    report(smtp_port=smtp_port, sms_url=f"http://127.0.0.1:{httpd.server_port}/")
    sys.stdin.read()
    httpd.shutdown()
    controller.stop()
    report(
        smtp_connections=counter.connections,
        smtp_messages=counter.messages,
        sms_connections=sms["connections"],
        sms_requests=sms["requests"],
    )


class Servers:
    """The server process for one measurement."""

    def __enter__(self) -> Servers:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, SCRIPT, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        ports = json.loads(self.proc.stdout.readline())
        self.smtp_port: int = ports["smtp_port"]
        self.sms_url: str = ports["sms_url"]
        self.counts: dict[str, int] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.counts = json.loads(self.proc.stdout.readline() or "{}")
        self.proc.wait(timeout=60)


# --------------------------------------------------------------------------- config & data


def write_config(folder: Path, smtp_port: int, sms_url: str) -> Path:
    """The shipped config + the servers of this measurement, limits raised (see tests/helpers.py)."""
    from tests.helpers import dispatch_config as _config

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg = _config(
        folder, REPO / "config", smtp_port, sms_url, extra_email=f"  rate_per_minute: {UNLIMITED}\n"
    )
    settings = cfg / "settings.yaml"
    text = (
        settings.read_text(encoding="utf-8")
        .replace(
            "  secret: test-secret\n",
            f"  secret: {SECRET}\n  rate_per_minute: {UNLIMITED}\n  daily_cap_per_number: {UNLIMITED}\n"
            "  timeout: 10\n",
            1,
        )
        .replace("  timeout: 0.5\n", "", 1)
        .replace("  timeout: 2\n", "  timeout: 30\n", 1)
    )
    settings.write_text(text, encoding="utf-8")
    return cfg


def worker_prepare(cfg: Path, work: Path, rows: int) -> None:
    """Sync N penalties, import their contacts, compute eligibility (not timed)."""
    from tests.helpers import CliRunner, penalty, uscc, write_rows
    from tests.test_dispatch import CONTACT_HEADERS

    def contact(i: int) -> dict[str, str]:
        sms_only = i % SMS_EVERY == 0
        return {
            "统一社会信用代码": uscc(i),
            "联系人": "王经理",
            "联系电话": f"139{i:08d}" if sms_only else "",
            "电子邮箱": "" if sms_only else f"c{i}@example.com",
        }

    cli = CliRunner(cfg)
    steps = {
        "sync": (
            "sync",
            "--file",
            str(write_rows(work / "p.csv", [penalty(i) for i in range(1, rows + 1)])),
            "--force",
        ),
        "contacts": (
            "contacts",
            "import",
            str(
                write_rows(
                    work / "c.csv",
                    [contact(i) for i in range(1, rows + 1)],
                    headers=CONTACT_HEADERS,
                )
            ),
        ),
        "eligibility": ("eligibility",),
    }
    seconds = {}
    for name, argv in steps.items():
        took, result = timed(lambda argv=argv: cli(*argv, now=NOW))  # type: ignore[misc]
        if result.code != 0:
            raise RuntimeError(f"{name} failed: {result.err[-2000:]}")
        seconds[name] = round(took, 2)
    report(step="prepare", seconds=seconds)


def worker_run(cfg: Path, profile: Path | None, stage: str) -> None:
    """`stage` ("plan" or "dispatch") as `credit-repair notices plan` / `dispatch` run it."""
    from pipeline import logs, stages
    from pipeline.app import App

    app = App.load(str(cfg), NOW)
    logs.configure("warning", "json")
    with app.engine.connect():  # migrate / connect outside the timing
        pass
    if stage == "plan":
        seconds, cpu, planned = cpu_timed(lambda: stages.plan_notices(app), profile, stage)
        app.close()
        report(step=stage, seconds=seconds, cpu_seconds=cpu, planned=planned.planned)
        return
    seconds, cpu, dispatched = cpu_timed(lambda: stages.dispatch(app), profile, stage)
    app.close()
    report(
        step=stage,
        seconds=seconds,
        cpu_seconds=cpu,
        dispatched={k: v for k, v in dispatched.as_json().items() if v},
    )


def cpu_timed(step: Callable[[], T], profile: Path | None, name: str) -> tuple[float, float, T]:
    """(wall seconds, this process's CPU seconds, result) of `step`, cProfiled into
    `<profile>` with `_<name>` before the suffix when asked."""
    cpu = time.process_time()
    if profile is None:
        seconds, value = timed(step)
    else:
        import cProfile

        profiler = cProfile.Profile()
        seconds, value = timed(lambda: profiler.runcall(step))
        profiler.dump_stats(str(profile.with_name(f"{profile.stem}_{name}{profile.suffix}")))
    return seconds, time.process_time() - cpu, value


def prerender(
    cfg: Path, state: str
) -> tuple[str, list[tuple[str, bytes]], list[tuple[bytes, dict[str, str]]]]:
    """(sender, [(to, eml bytes)], [(sms body, headers)]) for every row in `state`: the
    planned ones (`pending`, before the run) or those the run sent (`sent`, after it)."""
    from pipeline.app import App
    from pipeline.channels.email import EmailChannel, render_eml
    from pipeline.channels.sms.common import prepare
    from pipeline.channels.sms.webhook import sign
    from pipeline.delivery.dispatcher import to_message
    from pipeline.notices.outbox import outbox

    app = App.load(str(cfg), NOW)
    channel = EmailChannel(app.config.settings.email)
    sms_settings = app.config.settings.sms
    from pipeline.channels.sms.webhook import LIMITS

    emails: list[tuple[str, bytes]] = []
    sms: list[tuple[bytes, dict[str, str]]] = []
    with app.engine.connect() as conn:
        rows = conn.execute(
            outbox.select().where(outbox.c.state == state).order_by(outbox.c.id)
        ).mappings()
        for row in rows:
            message = to_message(dict(row))
            if row["channel"] == "email":
                emails.append((message.recipient, render_eml(message, channel.sender)))
            else:
                request = prepare(message, sms_settings, LIMITS)
                body = json.dumps(
                    {
                        "id": request.key,
                        "phone": request.phone,
                        "template": request.template,
                        "params": request.params,
                        "text": message.text,
                    },
                    ensure_ascii=False,
                ).encode()
                sms.append(
                    (
                        body,
                        {
                            "Content-Type": "application/json; charset=utf-8",
                            "X-Signature": sign(SECRET, body),
                        },
                    )
                )
    app.close()
    return channel.sender.addr_spec, emails, sms


def worker_baseline(cfg: Path, smtp_port: int, sms_url: str, state: str) -> None:
    import http.client
    import smtplib
    from urllib.parse import urlsplit

    render_seconds, (sender, emails, sms) = timed(lambda: prerender(cfg, state))
    url = urlsplit(sms_url)

    def send_all() -> float:
        smtp_seconds, _ = timed(lambda: _smtp_loop(smtplib, smtp_port, sender, emails))
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        for body, headers in sms:
            conn.request("POST", url.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
        conn.close()
        return smtp_seconds

    cpu = time.process_time()
    seconds, smtp_seconds = timed(send_all)
    report(
        step="baseline",
        seconds=seconds,
        cpu_seconds=time.process_time() - cpu,
        smtp_seconds=smtp_seconds,
        emails=len(emails),
        sms=len(sms),
        render_seconds=render_seconds,
    )


def _smtp_loop(smtplib: Any, port: int, sender: str, emails: list[tuple[str, bytes]]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
        for to, data in emails:
            conn.sendmail(sender, [to], data)


# --------------------------------------------------------------------------- driver (parent)


def bench_db(db: str, url: str, work: Path, rows: int, profile: Path | None) -> dict[str, Any]:
    """Set-up, plan, a baseline, dispatch, a baseline again: each in its own process.

    The machine is shared and its load drifts within a minute, so the baseline is measured
    just before and just after the dispatch and their mean is the baseline of the line
    (both are in it too)."""
    env = {**os.environ, "CREDIT_REPAIR_DATABASE_URL": url}

    def worker(servers: Servers, *args: str) -> Any:
        cfg = write_config(work / "cfg", servers.smtp_port, servers.sms_url)
        return run_child([SCRIPT, "--cfg", str(cfg), *args], env)

    def baseline(state: str) -> tuple[Any, dict[str, int]]:
        with Servers() as servers:
            child = worker(
                servers,
                *("--worker", "baseline", "--state", state),
                *("--smtp-port", str(servers.smtp_port), "--sms-url", servers.sms_url),
            )
        return child, servers.counts

    profiling = ["--profile-file", str(profile)] if profile is not None else []
    with Servers() as servers:
        prep = worker(servers, "--worker", "prepare", "--work", str(work), "--rows", str(rows))
        note(f"{db}: set-up (not timed) {prep.report['seconds']}")
        plan = worker(servers, "--worker", "plan", *profiling)
    before, _ = baseline("pending")
    with Servers() as servers:
        run = worker(servers, "--worker", "dispatch", *profiling)
    after, base_counts = baseline("sent")
    p, r, b0, b1 = plan.report, run.report, before.report, after.report
    base_seconds = (b0["seconds"] + b1["seconds"]) / 2
    sent = r["dispatched"].get("sent", 0)
    messages = b1["emails"] + b1["sms"]
    base_rate = messages / base_seconds
    common = {
        "planned": p["planned"],
        "dispatched": r["dispatched"],
        "emails": b1["emails"],
        "sms": b1["sms"],
        "baseline_seconds_before": round(b0["seconds"], 3),
        "baseline_seconds_after": round(b1["seconds"], 3),
        "baseline_smtp_only_seconds": round((b0["smtp_seconds"] + b1["smtp_seconds"]) / 2, 3),
        "baseline_cpu_seconds": round((b0["cpu_seconds"] + b1["cpu_seconds"]) / 2, 3),
        "baseline_peak_rss_mb": round(max(before.peak_rss_mb, after.peak_rss_mb), 1),
        "servers": servers.counts,
        "baseline_servers": base_counts,
    }
    end_to_end = p["seconds"] + r["seconds"]
    rate = sent / end_to_end
    emit(
        "notices_end_to_end",
        sent,
        end_to_end,
        base_seconds,
        max(plan.peak_rss_mb, run.peak_rss_mb),
        db,
        messages_per_s=round(rate, 1),
        baseline_messages_per_s=round(base_rate, 1),
        rate_share=round(rate / base_rate, 3),
        target_rate_share=END_TO_END_TARGET,
        ok=rate / base_rate >= END_TO_END_TARGET and sent == rows,
        plan_seconds=round(p["seconds"], 3),
        plan_cpu_seconds=round(p["cpu_seconds"], 3),
        dispatch_seconds=round(r["seconds"], 3),
        dispatch_cpu_seconds=round(r["cpu_seconds"], 3),
        **common,
    )
    dispatch_rate = sent / r["seconds"]
    return emit(
        "notices_dispatch",
        sent,
        r["seconds"],
        base_seconds,
        run.peak_rss_mb,
        db,
        messages_per_s=round(dispatch_rate, 1),
        baseline_messages_per_s=round(base_rate, 1),
        rate_share=round(dispatch_rate / base_rate, 3),
        target_rate_share=TARGET,
        ok=dispatch_rate / base_rate >= TARGET and sent == rows,
        cpu_seconds=round(r["cpu_seconds"], 3),
        plan_seconds=round(p["seconds"], 3),
        plan_cpu_seconds=round(p["cpu_seconds"], 3),
        plan_messages_per_s=round(p["planned"] / p["seconds"], 1),
        plan_peak_rss_mb=round(plan.peak_rss_mb, 1),
        **common,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000, help="notices (one per penalty)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the measured run into bench/out/notices_<db>.prof",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker", choices=["prepare", "plan", "dispatch", "baseline"], help=argparse.SUPPRESS
    )
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--cfg", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--smtp-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sms-url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.worker == "prepare":
        worker_prepare(args.cfg, args.work, args.rows)
    elif args.worker in ("plan", "dispatch"):
        worker_run(args.cfg, args.profile_file, args.worker)
    elif args.worker == "baseline":
        worker_baseline(args.cfg, args.smtp_port, args.sms_url, args.state)
    else:
        return _drive(args)
    return 0


def _drive(args: argparse.Namespace) -> int:
    note(
        f"{args.rows} notices ({100 - 100 // SMS_EVERY} % e-mail with DOCX, {100 // SMS_EVERY} % SMS); "
        f"timed: plan_notices, then dispatch, vs a bare smtplib + http.client loop over the same bytes"
    )
    lines: list[dict[str, Any]] = []
    if args.profile:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for db in dbs:
        work = Path(tempfile.mkdtemp(prefix=f"bench-notices-{db}-"))
        profile = OUT_DIR / f"notices_{db}.prof" if args.profile else None
        try:
            if db == "sqlite":
                lines.append(bench_db(db, sqlite_url(work / "bench.db"), work, args.rows, profile))
            else:
                with postgres() as server:
                    lines.append(
                        bench_db(db, server.create_database()[1], work, args.rows, profile)
                    )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    missed = [x["db"] for x in lines if not x["ok"]]
    note("target met" if not missed else f"target missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
