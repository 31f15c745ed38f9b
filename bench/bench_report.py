"""Benchmark the monthly report: streamed workbook (write-only) against openpyxl's normal mode.

    .venv/bin/python bench/bench_report.py --rows 100000 --db both

A ledger of N entries (85 % penalties, 15 % severe-list entries) across 12 departments,
first seen over three years, with ledger events (notices, receipts, willingness,
progress, closings — some after the report month, so the as-of roll-back has work to
do) and outbox notices in ``unknown``/``failed``, is generated straight into the
database (not timed). Then, per database, each in a fresh process:

- ``baseline``: the same report built with the workbook in openpyxl's normal mode
  (every cell kept in memory until save — the naive way);
- ``monthly_report``: `pipeline.monthly.run.build_report` as the job runs it: one
  streamed pass, write-only workbook, HTML, report_runs row, outbox messages.

Both report 2026-10 as of 2026-11-20 with no stored earlier months, so both also
recompute the 12 trend months (the worst case; a steady monthly run reuses them).
One JSON line per database on stdout: {"name", "rows", "seconds", "baseline_seconds",
"ratio", "peak_rss_mb", "db", ...}. `seconds` is the build_report call (start-up,
imports and data generation excluded); peak RSS is the whole child's.
Targets: under 60 s and 500 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import OUT_DIR, emit, note, postgres, report, run_child, sqlite_url, timed  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=TZ)
MONTH = "2026-10"
MAX_SECONDS = 60.0
MAX_RSS_MB = 500.0
DEPARTMENTS = 12
BATCH = 5000
LEDGER_DATES = (
    "notified_at",
    "notified_channel",
    "receipt_confirmed_at",
    "planned_on",
    "closed_on",
    "close_reason",
    "status",
    "repairable_from",
    "removal_on",
)


# --------------------------------------------------------------------------- data


def write_config(folder: Path) -> Path:
    """The shipped config with 12 departments (the bureau and 11 penalising ones)."""
    cfg = folder / "cfg"
    shutil.copytree(REPO / "config", cfg, dirs_exist_ok=True)
    deps: list[dict[str, Any]] = [
        {
            "code": "YSHJ",
            "name": "宝山区营商环境局",
            "bureau": True,
            "contact": {"name": "信用科", "email": "credit-bureau@example.org"},
            "head": {"name": "局长", "email": "bureau-head@example.org"},
        }
    ]
    for i in range(1, DEPARTMENTS):
        deps.append(
            {
                "code": f"D{i:02d}",
                "name": f"宝山区第{i}执法局",
                "authorities": [{"name": f"宝山区第{i}执法局"}],
                "contact": {"name": f"联系人{i}", "email": f"dept{i}@example.org"},
            }
        )
    (cfg / "departments.yaml").write_text(
        yaml.safe_dump({"departments": deps}, allow_unicode=True), encoding="utf-8"
    )
    return cfg


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randrange(8, 18), rng.randrange(60)), TZ)


def generate(
    n: int, seed: int
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]]:
    """(record, its ledger events, an outbox row or None), deterministic for a seed."""
    from pipeline.sync.normalize import decision_key

    rng = random.Random(seed)
    codes = ["YSHJ", *(f"D{i:02d}" for i in range(1, DEPARTMENTS))]
    today = NOW.date()
    for i in range(1, n + 1):
        kind = "list" if rng.random() < 0.15 else "penalty"
        seen = today - dt.timedelta(days=rng.randrange(0, 3 * 365))
        decided = seen - dt.timedelta(days=rng.randrange(0, 20))
        rec: dict[str, Any] = {
            "id": i,
            "kind": kind,
            "authority": f"宝山区第{i % 11 + 1}执法局",
            "decision_no": f"宝罚〔{decided.year}〕{i}号",
            "decision_key": decision_key(f"宝罚〔{decided.year}〕{i}号"),
            "entity_name": f"双鸭山市测试{i % (n // 2 + 1)}有限公司",
            "uscc": f"91230506{i % (n // 2 + 1):010d}",
            "legal_rep": "张三",
            "decision_date": decided,
            "content_hash": f"{i:032x}",
            "department_code": rng.choice(codes),
            "source": "bench",
            "first_sync_id": 1,
            "last_sync_id": 1,
            "first_seen_on": seen,
            "market_regulation": False,
            "list_name": "严重失信主体名单" if kind == "list" else None,
            "progress": 0,
            "willingness": "unknown",
            "green_channel": rng.random() < 0.03,
            "remarks": "备注" if rng.random() < 0.1 else None,
            "responsible": "李四 13800000000",
            **dict.fromkeys(LEDGER_DATES),
        }
        if kind == "penalty":
            rec["status"] = "not_published" if rng.random() < 0.05 else None
            rec["repairable_from"] = decided + dt.timedelta(days=92)
            rec["removal_on"] = decided + dt.timedelta(days=3 * 365)
            if rec["status"] is None:
                rec["status"] = "repairable" if today >= rec["repairable_from"] else "in_min_period"
        events: list[dict[str, Any]] = []

        def event(
            name: str,
            old: Any,
            new: Any,
            day: dt.date,
            rec: dict[str, Any] = rec,
            events: list[dict[str, Any]] = events,
        ) -> None:
            at = _at(min(day, today), rng)
            text = [
                None
                if v is None
                else (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v))
                for v in (old, new)
            ]
            events.append(
                {
                    "record_id": rec["id"],
                    "field": name,
                    "old_value": text[0],
                    "new_value": text[1],
                    "at": at,
                    "source": "cli",
                    "actor": "bench",
                }
            )
            rec[name] = new

        told = seen + dt.timedelta(days=rng.randrange(0, 60))
        if rng.random() < 0.75 and told <= today:
            channel = rng.choice(["email", "sms", "manual"])
            event("notified_at", None, _at(told, rng), told)
            event("notified_channel", None, channel, told)
            event("progress", 0, 1, told)
            if channel == "manual" or rng.random() < 0.4:
                event("receipt_confirmed_at", None, _at(told, rng), told)
            if rng.random() < 0.6:
                event(
                    "willingness",
                    "unknown",
                    rng.choice(["yes", "yes", "no"]),
                    told + dt.timedelta(days=3),
                )
            if rec["willingness"] == "yes" and rng.random() < 0.5:
                later = told + dt.timedelta(days=rng.randrange(10, 120))
                event("progress", 1, rng.choice([2, 3, 4]), later)
            if rng.random() < 0.2:
                event("planned_on", None, told + dt.timedelta(days=60), told)
        if rng.random() < 0.15:
            closed = seen + dt.timedelta(days=rng.randrange(30, 400))
            if closed <= today:
                reason = "removed" if kind == "list" else rng.choice(["repaired_early", "expired"])
                event("closed_on", None, closed, closed)
                event("close_reason", None, reason, closed)
        box = None
        if rec["notified_at"] is not None and rng.random() < 0.05:
            box = {
                "key": f"repair_notice:{i}:initial:email:c{i}@example.com",
                "record_id": i,
                "department_code": rec["department_code"],
                "kind": "repair_notice",
                "occurrence": "initial",
                "channel": "email",
                "recipient": f"c{i}@example.com",
                "state": rng.choice(["unknown", "failed"]),
                "attempts": 1,
                "next_attempt_at": rec["notified_at"],
                "payload": {},
                "created_at": rec["notified_at"],
                "updated_at": rec["notified_at"],
            }
        yield rec, events, box


def worker_seed(url: str, rows: int, seed: int) -> None:
    from sqlalchemy import insert

    from pipeline.db.engine import make_engine
    from pipeline.db.migrate import upgrade
    from pipeline.db.models import LedgerEvent, OutboxMessage, Record, table_of

    engine = make_engine(url)
    upgrade(engine)
    counts = {"records": 0, "events": 0, "outbox": 0}
    recs: list[dict[str, Any]] = []
    evs: list[dict[str, Any]] = []
    boxes: list[dict[str, Any]] = []

    def flush() -> None:
        with engine.begin() as conn:
            if recs:
                conn.execute(insert(table_of(Record)), recs)
            if evs:
                conn.execute(insert(table_of(LedgerEvent)), evs)
            if boxes:
                conn.execute(insert(table_of(OutboxMessage)), boxes)
        counts["records"] += len(recs)
        counts["events"] += len(evs)
        counts["outbox"] += len(boxes)
        recs.clear(), evs.clear(), boxes.clear()

    for rec, events, box in generate(rows, seed):
        recs.append(rec)
        evs.extend(events)
        if box:
            boxes.append(box)
        if len(recs) >= BATCH:
            flush()
    flush()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval('records_id_seq', (SELECT max(id) FROM records))")
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    report(step="seed", **counts)


def prepare_trend(engine: Any, warm: bool) -> None:
    """warm: the 12 earlier months stored in report_runs (a steady monthly run); cold: none."""
    from sqlalchemy import delete, insert

    from pipeline.db.models import ReportRun, table_of
    from pipeline.monthly.data import as_of, month_period, shift_month

    runs = table_of(ReportRun)
    months = [shift_month(month_period(MONTH), -n) for n in range(12, 0, -1)]
    with engine.begin() as conn:
        conn.execute(delete(runs).where(runs.c.period.in_([m.key for m in months])))
        if warm:
            tz = ZoneInfo("Asia/Shanghai")
            conn.execute(
                insert(runs),
                [
                    {
                        "period": m.key,
                        "created_at": NOW,
                        "files": {},
                        "sent_at": NOW,
                        "kpis": {
                            "as_of": as_of(m, NOW, tz).instant.isoformat(),
                            "total": {"records": 1},
                        },
                    }
                    for m in months
                ],
            )


def worker_report(url: str, cfg: Path, out: Path, write_only: bool, warm: bool) -> None:
    from pipeline.config import load_config
    from pipeline.db.engine import make_engine
    from pipeline.monthly.data import month_period
    from pipeline.monthly.run import ReportRequest, build_report

    config = load_config(cfg, env={})
    engine = make_engine(url)
    prepare_trend(engine, warm)
    request = ReportRequest(month_period(MONTH), NOW, out, send=True, write_only=write_only)
    cpu = time.process_time()
    seconds, result = timed(lambda: build_report(engine, config, request))
    cpu = time.process_time() - cpu
    engine.dispose()
    size = Path(result.files["xlsx"]).stat().st_size
    sources = sorted({p["source"] for p in result.trend})
    report(
        step="report",
        seconds=seconds,
        cpu_seconds=round(cpu, 3),
        rows=result.rows,
        records=result.total["records"],
        told_rate=result.total["told_rate"],
        xlsx_mb=round(size / 2**20, 1),
        trend_sources=sources,
    )


# --------------------------------------------------------------------------- driver


def _child(*args: str) -> tuple[dict[str, Any], float]:
    result = run_child([SCRIPT, "--worker", *args])
    return result.report, result.peak_rss_mb


def bench_db(
    db: str, url: str, cfg: Path, work: Path, rows: int, seed: int
) -> list[dict[str, Any]]:
    """Per trend state (warm: earlier months stored; cold: recomputed): baseline, then ours."""
    seeded, _ = _child("seed", "--url", url, "--rows", str(rows), "--seed", str(seed))
    note(f"{db}: seeded {seeded}")
    lines = []
    for name, trend in (("monthly_report", "--warm"), ("monthly_report_cold", "--cold")):
        common = ["report", "--url", url, "--cfg", str(cfg), trend]
        base, base_rss = _child(
            *common, "--out", str(work / f"{db}-{name}-baseline"), "--normal-mode"
        )
        ours, rss = _child(*common, "--out", str(work / f"{db}-{name}"))
        ok = ours["seconds"] < MAX_SECONDS and rss < MAX_RSS_MB
        lines.append(
            emit(
                name,
                rows,
                ours["seconds"],
                base["seconds"],
                rss,
                db,
                baseline_peak_rss_mb=round(base_rss, 1),
                cpu_seconds=ours["cpu_seconds"],
                baseline_cpu_seconds=base["cpu_seconds"],
                target_seconds=MAX_SECONDS,
                target_rss_mb=MAX_RSS_MB,
                ok=ok,
                events=seeded["events"],
                departments=DEPARTMENTS,
                result={
                    k: v for k, v in ours.items() if k not in ("step", "seconds", "cpu_seconds")
                },
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep", action="store_true", help="keep the workbooks and databases in bench/out"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--worker", choices=["seed", "report"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cfg", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--normal-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm", dest="warm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cold", dest="warm", action="store_false", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "seed":
        worker_seed(args.url, args.rows, args.seed)
        return 0
    if args.worker == "report":
        worker_report(args.url, args.cfg, args.out, not args.normal_mode, args.warm)
        return 0
    return _drive(args)


def _drive(args: argparse.Namespace) -> int:
    if args.keep:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-report-", dir=OUT_DIR if args.keep else None))
    note(
        f"monthly report {MONTH} as of {NOW.isoformat()}: {args.rows} ledger entries, {DEPARTMENTS} departments; "
        f"baseline = the same report with the workbook in openpyxl's normal mode; "
        f"targets: < {MAX_SECONDS:.0f} s and < {MAX_RSS_MB:.0f} MB peak RSS"
    )
    lines = []
    try:
        cfg = write_config(work)
        if args.db in ("sqlite", "both"):
            lines.extend(
                bench_db("sqlite", sqlite_url(work / "report.db"), cfg, work, args.rows, args.seed)
            )
        if args.db in ("postgresql", "both"):
            with postgres() as server:
                lines.extend(
                    bench_db(
                        "postgresql", server.create_database()[1], cfg, work, args.rows, args.seed
                    )
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    missed = [f"{x['name']}/{x['db']}" for x in lines if not x["ok"]]
    note("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
