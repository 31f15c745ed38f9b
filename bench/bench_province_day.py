"""Benchmark a "province day" end to end, at several sizes, to show how each stage grows.

    .venv/bin/python bench/bench_province_day.py --sizes 10000,100000,1000000 --db both
    .venv/bin/python bench/bench_province_day.py --rows 10000     # sizes 100, 1000, 10000

Per size N and database, in fresh processes:

- set-up (not timed): the first export of N penalties (GB18030 CSV, `pipeline.sync.samplegen`)
  synced on day 0, eligibility computed and notices planned; the contacts (90 % e-mail,
  every 10th a phone only) of the companies that will appear on day 1 imported.
- the day (timed, one process, the stages the CLI and the jobs call — `pipeline.stages`):
  `sync` of the next export (the same rows with 1 % changed and 0.5 % dropped, plus N/100
  new penalties) → `evaluate` (the daily recompute and the ledger transitions) →
  `plan_notices` (a DOCX 告知书 per new penalty with a contact) → `dispatch` (at most
  10,000 messages to an aiosmtpd sink and a keep-alive SMS webhook, in their own process)
  → `monthly_report` (workbook + PDF of the month, not sent).

One JSON line per (size, database, stage) and one for the day's total, with the shared keys
{"name", "rows", "seconds", "baseline_seconds", "ratio", "peak_rss_mb", "db"}: the baseline of
a stage is its time at the smallest size scaled linearly to N (measured in the same run), so
`ratio` ≤ 1 means the stage grew linearly or better; `exponent` is the growth exponent
log(t/t₀)/log(N/N₀) against the smallest size (1 = linear). At the smallest size the ratio
is 1 by definition. A stage's line adds `peak_rss_mb_after`, the day's process peak RSS
once that stage is done (the stage at which it jumps holds the memory). Messages scale with the churn (N/100 new penalties), capped at 10,000.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    ENCODING,
    OUT_DIR,
    emit,
    note,
    postgres,
    report,
    run_child,
    sqlite_url,
)

SCRIPT = str(Path(__file__).resolve())
DAY0 = "2026-11-26T09:00"  # a Thursday
DAY1 = "2026-11-27T09:00"  # the next working day, inside the SMS hours
MONTH = "2026-11"
RECENT = dt.date(2026, 11, 26)
CHANGED_EVERY = 100  # 1 % changed
DROPPED_EVERY = 200  # 0.5 % dropped
NEW_SHARE = 0.01
MAX_MESSAGES = 10_000
SMS_EVERY = 10
STAGES = ("sync", "evaluate", "plan", "dispatch", "report")


# --------------------------------------------------------------------------- data


def _rows(total: int, seed: int) -> Iterator[dict[str, str]]:
    from pipeline.sync.samplegen import penalties

    return penalties(total, seed)


def _changed(i: int, row: dict[str, str]) -> dict[str, str]:
    # never equal to a generated amount (those are 0.05 … 20)
    return {**row, "CF_NR_FK": f"{100 + i % 97}.5"}


def write_exports(work: Path, rows: int, seed: int) -> tuple[Path, Path, Path]:
    """(day-0 export, day-1 export, the contacts of day 1's new companies)."""
    from pipeline.sync.samplegen import CONTACT_HEADERS, PENALTY_HEADERS

    new = max(1, round(rows * NEW_SHARE))
    day0, day1, contacts = work / "day0.csv", work / "day1.csv", work / "contacts.csv"
    with (
        day0.open("w", encoding=ENCODING, newline="") as f0,
        day1.open("w", encoding=ENCODING, newline="") as f1,
        contacts.open("w", encoding="utf-8", newline="") as fc,
    ):
        w0 = csv.DictWriter(f0, PENALTY_HEADERS, extrasaction="ignore")
        w1 = csv.DictWriter(f1, PENALTY_HEADERS, extrasaction="ignore")
        wc = csv.writer(fc)
        w0.writeheader(), w1.writeheader(), wc.writerow(CONTACT_HEADERS)
        for i, row in enumerate(_rows(rows + new, seed)):
            if i >= rows:  # a new penalty on day 1 (decided in the last 2 weeks), its contact known
                row["CF_JDRQ"] = (RECENT - dt.timedelta(days=i % 14)).isoformat()
                w1.writerow(row)
                sms_only = i % SMS_EVERY == 0
                phone = f"139{i:08d}" if sms_only else ""
                email = "" if sms_only else f"c{i}@example.com"
                wc.writerow([row["CF_XDR_SHXYM"], "王经理", phone, email])
                continue
            w0.writerow(row)
            if i % DROPPED_EVERY == DROPPED_EVERY // 2:
                continue
            w1.writerow(_changed(i, row) if i % CHANGED_EVERY == CHANGED_EVERY // 3 else row)
    return day0, day1, contacts


# --------------------------------------------------------------------------- workers


def _app(cfg: Path, now: str) -> Any:
    from pipeline import logs
    from pipeline.app import App

    logs.configure("warning", "json")
    return App.load(str(cfg), now, commit=True)


def worker_setup(cfg: Path, work: Path) -> None:
    """Day 0: the first export synced, evaluated, planned; day 1's contacts imported."""
    from pipeline import stages
    from pipeline.sync.contacts import import_contacts
    from pipeline.sync.loading import file_target

    app = _app(cfg, DAY0)
    now = app.clock.now()
    started = time.perf_counter()
    synced = stages.sync(app, file_target(str(work / "day0.csv"), "penalties"), now, force=True)
    stages.evaluate(app, progress=lambda _n: None)
    handled = mark_backlog_handled(app)
    contacts = import_contacts(app.engine, work / "contacts.csv", now)
    app.close()
    report(
        step="setup",
        seconds=round(time.perf_counter() - started, 1),
        added=synced.added,
        backlog_handled=handled,
        contacts=contacts.added,
    )


def mark_backlog_handled(app: Any) -> int:
    """Every notice due by day 0 recorded as handled, as months of earlier runs would leave it.

    Rendering and sending the whole backlog (a DOCX per record: hours at 10⁶) is not part
    of a steady day; the rows carry the planner's own (record, kind, occurrence), which is
    what planning checks, so day 1 plans only what is new that day.
    """
    from sqlalchemy import insert

    from pipeline.db.models import OutboxMessage, table_of
    from pipeline.notices.outbox import message_key
    from pipeline.notices.planner import _open_records, due_occurrences

    kinds = app.config.notices.kinds
    today, now = app.clock.today(), app.clock.now()
    outbox = table_of(OutboxMessage)
    done = 0
    with app.engine.begin() as conn:
        for page in _open_records(conn, 5000):
            rows = [
                {
                    "key": message_key(
                        occ.kind, str(row["id"]), occ.occurrence, "manual", "backlog"
                    ),
                    "record_id": row["id"],
                    "department_code": row["department_code"],
                    "kind": occ.kind,
                    "occurrence": occ.occurrence,
                    "channel": "manual",
                    "recipient": "backlog",
                    "state": "sent",
                    "attempts": 1,
                    "next_attempt_at": now,
                    "payload": {},
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": now,
                }
                for row in page
                for occ in due_occurrences(row, today, kinds, app.calendar)
            ]
            if rows:
                conn.execute(insert(outbox), rows)
                done += len(rows)
    return done


def worker_day(cfg: Path, work: Path, report_dir: Path) -> None:
    """Day 1: sync → evaluate → plan → dispatch → monthly report, each stage timed."""
    from pipeline import stages
    from pipeline.monthly.data import month_period
    from pipeline.sync.loading import file_target

    app = _app(cfg, DAY1)
    with app.engine.connect():  # migrations checked and a connection made outside the timing
        pass
    now = app.clock.now()
    target = file_target(str(work / "day1.csv"), "penalties")
    steps: dict[str, Any] = {
        "sync": lambda: stages.sync(app, target, now),
        "evaluate": lambda: stages.evaluate(app, progress=lambda _n: None),
        "plan": lambda: stages.plan_notices(app),
        "dispatch": lambda: stages.dispatch(app, limit=MAX_MESSAGES),
        "report": lambda: stages.monthly_report(
            app, month_period(MONTH), out=str(report_dir), send=False
        ),
    }
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    peak: dict[str, float] = {}
    results: dict[str, Any] = {}
    for name, step in steps.items():
        wall, used = time.perf_counter(), time.process_time()
        results[name] = step()
        seconds[name] = round(time.perf_counter() - wall, 3)
        cpu[name] = round(time.process_time() - used, 3)
        # the process's peak so far: where it jumps is the stage that holds the memory
        peak[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    app.close()
    sent = results["dispatch"].as_json()
    report(
        step="day",
        seconds=seconds,
        cpu_seconds=cpu,
        peak_rss_mb_after=peak,
        synced={k: results["sync"].as_json().get(k) for k in ("added", "updated", "vanished")},
        planned=results["plan"].planned,
        dispatched={k: v for k, v in sent.items() if v},
        report_rows=results["report"].rows,
    )


# --------------------------------------------------------------------------- driver


def bench_db(db: str, url: str, rows: int, work: Path, seed: int) -> dict[str, Any]:
    from bench.bench_notices import Servers, write_config

    data = work / f"n{rows}"
    data.mkdir(parents=True, exist_ok=True)
    write_exports(data, rows, seed)
    with Servers() as servers:
        cfg = write_config(work / f"cfg-{db}-{rows}", servers.smtp_port, servers.sms_url)
        env_url = {"CREDIT_REPAIR_DATABASE_URL": url}
        setup = run_child(
            [SCRIPT, "--worker", "setup", "--cfg", str(cfg), "--work", str(data)], _env(env_url)
        )
        note(f"{db} N={rows}: set-up {setup.report}")
        day = run_child(
            [
                SCRIPT,
                "--worker",
                "day",
                "--cfg",
                str(cfg),
                "--work",
                str(data),
                "--out",
                str(work / f"rep-{db}-{rows}"),
            ],
            _env(env_url),
        )
    note(f"{db} N={rows}: day {day.report}; servers {servers.counts}")
    return {**day.report, "peak_rss_mb": day.peak_rss_mb, "servers": servers.counts}


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


def emit_size(
    db: str, rows: int, day: dict[str, Any], smallest: tuple[int, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    lines = []
    total = sum(day["seconds"].values())
    figures = {**day["seconds"], "total": total}
    for name, seconds in figures.items():
        if smallest is None:
            base, exponent = seconds, 1.0
        else:
            n0, day0 = smallest
            s0 = day0["seconds"][name] if name != "total" else sum(day0["seconds"].values())
            base = s0 * rows / n0
            exponent = math.log(max(seconds, 1e-6) / max(s0, 1e-6)) / math.log(rows / n0)
        lines.append(
            emit(
                f"province_day_{name}",
                rows,
                seconds,
                base,
                day["peak_rss_mb"],
                db,
                exponent=round(exponent, 2),
                cpu_seconds=day["cpu_seconds"].get(
                    name, round(sum(day["cpu_seconds"].values()), 3)
                ),
                **(
                    {"planned": day["planned"], "dispatched": day["dispatched"]}
                    if name == "total"
                    else {"peak_rss_mb_after": day["peak_rss_mb_after"][name]}
                ),
            )
        )
    return lines


def _drive(args: argparse.Namespace) -> int:
    if args.rows:  # `make bench`: the largest size given, two smaller ones below it
        sizes = sorted({max(100, args.rows // 100), max(100, args.rows // 10), args.rows})
    else:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    work = Path(
        tempfile.mkdtemp(prefix="bench-province-", dir=OUT_DIR if OUT_DIR.exists() else None)
    )
    note(f"sizes {sizes}, databases {dbs}, work folder {work}")
    note("baseline of a stage = its time at the smallest size × N/N₀ (linear growth), same run")
    try:
        for db in dbs:
            smallest: tuple[int, dict[str, Any]] | None = None
            for rows in sizes:
                if db == "sqlite":
                    url = sqlite_url(work / f"{db}-{rows}.db")
                    day = bench_db(db, url, rows, work, args.seed)
                else:
                    with postgres() as server:
                        _name, url = server.create_database()
                        day = bench_db(db, url, rows, work, args.seed)
                emit_size(db, rows, day, smallest)
                smallest = smallest or (rows, day)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="records, comma-separated")
    parser.add_argument("--rows", type=int, help="the largest size (sizes: N/100, N/10, N)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--worker", choices=["setup", "day"], help=argparse.SUPPRESS)
    parser.add_argument("--cfg", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "setup":
        worker_setup(args.cfg, args.work)
        return 0
    if args.worker == "day":
        worker_day(args.cfg, args.work, args.out)
        return 0
    return _drive(args)


if __name__ == "__main__":
    sys.exit(main())
