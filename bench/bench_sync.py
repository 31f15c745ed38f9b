"""Benchmark snapshot sync: a first full sync and a re-sync, against a plain bulk load.

    .venv/bin/python bench/bench_sync.py --rows 1000000 --db both

Generates a penalty export (GB18030 CSV, `pipeline.sync.samplegen`) and a "next day" export
of the same rows with 1 % changed (another fine amount) and 0.5 % dropped. Then, per
database (SQLite file, throwaway PostgreSQL 15), each step in a fresh process:

    baseline(first file) → anchor(first file) → first_sync(first file)
    → baseline(resync file) → resync(resync file)

and prints one JSON line per sync measurement on stdout:
{"name", "rows", "seconds", "baseline_seconds", "ratio", "peak_rss_mb", "db", ...extras}.
`seconds` is the wall time of read_snapshot + sync_snapshot inside the child (process
start-up, imports and migrations excluded; the same for the baseline's load); peak RSS is
the whole child's. `cpu_seconds` / `baseline_cpu_seconds` are the same steps' CPU time in
the child (PostgreSQL's own work is not in them: read the wall times there).

The anchor (first_sync lines: `anchor_seconds`, `anchor_ratio`) is what a pandas user
would write: `pandas.read_csv(file, dtype=str, encoding="gb18030", chunksize=…)` and
`DataFrame.to_sql` of each chunk into an empty table of the same database, in one
transaction (pandas is the `bench` extra; without it the anchor is skipped, with a note).

Targets: first_sync ≤ 2× the baseline and ≤ 2× the anchor; resync ≤ 1× the baseline;
peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    BASELINE_DESCRIPTION,
    ENCODING,
    OUT_DIR,
    baseline_load,
    emit,
    generate_penalties,
    note,
    postgres,
    report,
    run_child,
    sqlite_url,
    timed,
)
from pipeline.sync.snapshot import _SQLITE_CACHE_KIB  # noqa: E402

TARGETS = {"first_sync": 2.0, "resync": 1.0}
ANCHOR_TARGET = 2.0
"""first_sync ≤ 2× the pandas anchor."""
ANCHOR_CHUNK_ROWS = 50_000
"""Rows per `read_csv` chunk: the whole file as pandas objects would not fit in memory."""
MAX_RSS_MB = 500.0
CHANGED_SHARE = 0.01
DROPPED_SHARE = 0.005
SCRIPT = str(Path(__file__).resolve())
NOW = {
    "first_sync": dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "resync": dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
}


# --------------------------------------------------------------------------- workers (children)


def _batch_size() -> int:
    from pipeline.config import load_config

    return load_config(REPO / "config", env={}).settings.sync.batch_size


def worker_migrate(url: str) -> None:
    from pipeline.db.engine import make_engine
    from pipeline.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    report(step="migrate")


def worker_sync(url: str, path: Path, name: str, profile: Path | None) -> None:
    from pipeline.config import load_config
    from pipeline.db.engine import make_engine
    from pipeline.sync.snapshot import SyncRequest, sync_snapshot
    from pipeline.sync.sources.files import read_snapshot

    config = load_config(REPO / "config", env={})
    engine = make_engine(url)
    with engine.connect():  # connect (and set pragmas) outside the timing
        pass

    def step() -> Any:
        with read_snapshot(path, encoding="auto") as snapshot:
            request = SyncRequest(snapshot, "penalty", "bench", NOW[name], False, {})
            return sync_snapshot(engine, config, request)

    cpu = time.process_time()
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        seconds, result = timed(lambda: profiler.runcall(step))
        profiler.dump_stats(str(profile))
    else:
        seconds, result = timed(step)
    cpu = time.process_time() - cpu
    engine.dispose()
    body = result.as_json()
    counts = {
        k: body[k]
        for k in (
            "rows_read",
            "added",
            "updated",
            "unchanged",
            "vanished",
            "out_of_scope",
            "quarantined",
            "warnings",
            "refused",
        )
    }
    report(step=name, seconds=seconds, cpu_seconds=cpu, **counts)


def worker_baseline(url: str, path: Path) -> None:
    batch = _batch_size()
    cpu = time.process_time()
    seconds, inserted = timed(lambda: baseline_load(url, path, batch))
    report(
        step="baseline", seconds=seconds, cpu_seconds=time.process_time() - cpu, inserted=inserted
    )


def worker_anchor(url: str, path: Path) -> None:
    """The pandas anchor (see the module docstring): read_csv in chunks, to_sql each."""
    try:
        import pandas
    except ImportError:
        report(step="anchor", skipped="pandas is not installed (pip install -e '.[bench]')")
        return
    from sqlalchemy import event

    from pipeline.db.engine import make_engine

    engine = make_engine(url)  # the application's connection settings (SQLite pragmas)
    if engine.dialect.name == "sqlite":
        # the same page cache the baseline and the sync give their bulk transaction
        cache = _SQLITE_CACHE_KIB["main"]
        event.listen(
            engine, "connect", lambda conn, _: conn.execute(f"PRAGMA cache_size = {cache}")
        )

    def load() -> int:
        count = 0
        with engine.begin() as conn:
            chunks = pandas.read_csv(
                path, dtype=str, encoding=ENCODING, chunksize=ANCHOR_CHUNK_ROWS
            )
            for chunk in chunks:
                chunk.to_sql("anchor", conn, if_exists="append", index=False)
                count += len(chunk)
        return count

    with engine.connect():  # connect outside the timing, as the sync does
        pass
    cpu = time.process_time()
    seconds, inserted = timed(load)
    cpu = time.process_time() - cpu
    engine.dispose()
    report(step="anchor", seconds=seconds, cpu_seconds=cpu, inserted=inserted)


# --------------------------------------------------------------------------- driver (parent)


def _child(*args: str) -> tuple[dict[str, Any], float]:
    result = run_child([SCRIPT, "--worker", *args])
    return result.report, result.peak_rss_mb


def bench_db(
    db: str, url_for: Any, files: dict[str, Path], rows: int, profile_dir: Path | None
) -> list[dict[str, Any]]:
    """baseline → (anchor →) sync, for the first file then the resync file; returns the
    emitted lines."""
    sync_url = url_for("sync")
    _child("migrate", "--url", sync_url)
    lines = []
    for name in ("first_sync", "resync"):
        path = files[name]
        base, base_rss = _child(
            "baseline", "--url", url_for(f"baseline_{name}"), "--file", str(path)
        )
        anchor: dict[str, Any] = {}
        if name == "first_sync":
            anchor, anchor_rss = _child("anchor", "--url", url_for("anchor"), "--file", str(path))
            if "skipped" in anchor:
                note(f"anchor skipped: {anchor['skipped']}")
            else:
                anchor["peak_rss_mb"] = anchor_rss
        args = ["sync", "--url", sync_url, "--file", str(path), "--name", name]
        if profile_dir is not None:
            args += ["--profile-file", str(profile_dir / f"{name}_{db}.prof")]
        sync, sync_rss = _child(*args)
        ratio = sync["seconds"] / base["seconds"]
        anchor_ratio = sync["seconds"] / anchor["seconds"] if "seconds" in anchor else None
        ok = (
            ratio <= TARGETS[name]
            and sync_rss < MAX_RSS_MB
            and (anchor_ratio is None or anchor_ratio <= ANCHOR_TARGET)
        )
        extras: dict[str, Any] = {}
        if name == "first_sync":
            extras = {
                "anchor_seconds": _rounded(anchor.get("seconds"), 3),
                "anchor_ratio": _rounded(anchor_ratio, 2),
                "anchor_cpu_seconds": _rounded(anchor.get("cpu_seconds"), 3),
                "anchor_peak_rss_mb": _rounded(anchor.get("peak_rss_mb"), 1),
                "anchor_target_ratio": ANCHOR_TARGET,
            }
        lines.append(
            emit(
                name,
                rows,
                sync["seconds"],
                base["seconds"],
                sync_rss,
                db,
                baseline_peak_rss_mb=round(base_rss, 1),
                target_ratio=TARGETS[name],
                ok=ok,
                result={
                    k: v for k, v in sync.items() if k not in ("step", "seconds", "cpu_seconds")
                },
                cpu_seconds=round(sync["cpu_seconds"], 3),
                baseline_cpu_seconds=round(base["cpu_seconds"], 3),
                cpu_ratio=round(sync["cpu_seconds"] / base["cpu_seconds"], 2),
                **extras,
            )
        )
    return lines


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="work in bench/out (git-ignored) and keep the files and SQLite "
        "databases there; generated files found there are reused",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each sync into bench/out/<name>_<db>.prof"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    # worker mode: one step in this (fresh) process
    parser.add_argument(
        "--worker", choices=["migrate", "sync", "baseline", "anchor"], help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", choices=list(NOW), help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    return _drive(args)


def _worker(args: argparse.Namespace) -> int:
    if args.worker == "migrate":
        worker_migrate(args.url)
    elif args.worker == "baseline":
        worker_baseline(args.url, args.file)
    elif args.worker == "anchor":
        worker_anchor(args.url, args.file)
    else:
        worker_sync(args.url, args.file, args.name, args.profile_file)
    return 0


def _drive(args: argparse.Namespace) -> int:
    if args.keep:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = OUT_DIR if args.keep else Path(tempfile.mkdtemp(prefix="bench-sync-"))
    data_dir = work
    try:
        files = {
            "first_sync": generate_penalties(
                data_dir / f"penalties_{args.rows}_s{args.seed}.csv", args.rows, seed=args.seed
            ),
            "resync": generate_penalties(
                data_dir / f"penalties_{args.rows}_s{args.seed}_resync.csv",
                args.rows,
                seed=args.seed,
                changed_share=CHANGED_SHARE,
                dropped_share=DROPPED_SHARE,
            ),
        }
        note(
            f"files: {files['first_sync']} ({args.rows} rows) and {files['resync']} "
            f"(same rows, {CHANGED_SHARE:.1%} changed fine amount, {DROPPED_SHARE:.1%} dropped)"
        )
        note(BASELINE_DESCRIPTION.format(encoding=ENCODING, batch=_batch_size()))
        note(
            f"anchor = pandas.read_csv(dtype=str, encoding={ENCODING}, chunksize="
            f"{ANCHOR_CHUNK_ROWS}) + DataFrame.to_sql into an empty table, one transaction, "
            "on the same database, in its own process"
        )
        note(
            f"targets: first_sync ≤ {TARGETS['first_sync']}× baseline and ≤ {ANCHOR_TARGET}× "
            f"anchor, resync ≤ {TARGETS['resync']}× baseline, peak RSS < {MAX_RSS_MB:.0f} MB"
        )
        lines: list[dict[str, Any]] = []
        profile_dir = OUT_DIR if args.profile else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        if args.db in ("sqlite", "both"):
            db_dir = Path(tempfile.mkdtemp(prefix="sqlite-", dir=work))

            def sqlite_for(name: str) -> str:
                return sqlite_url(db_dir / f"{name}.db")

            try:
                lines += bench_db("sqlite", sqlite_for, files, args.rows, profile_dir)
            finally:
                if not args.keep:
                    shutil.rmtree(db_dir, ignore_errors=True)
        if args.db in ("postgresql", "both"):
            with postgres() as server:
                urls: dict[str, str] = {}

                def pg_for(name: str) -> str:
                    if name not in urls:
                        urls[name] = server.create_database()[1]
                    return urls[name]

                lines += bench_db("postgresql", pg_for, files, args.rows, profile_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    missed = [f"{x['name']}/{x['db']}" for x in lines if not x["ok"]]
    note("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
