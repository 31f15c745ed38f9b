"""run, jobs list, jobs run, health."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from sqlalchemy import text

from jobs import REGISTRY
from pipeline.app import App, print_json
from pipeline.clock import SystemClock
from pipeline.db.migrate import current_revision, head_revision
from pipeline.errors import RefusedError, UsageError
from pipeline.scheduler.daemon import Daemon
from pipeline.scheduler.lease import HeldLease, try_acquire
from pipeline.scheduler.runner import (
    RUNNER_LEASE,
    JobOutcome,
    Runner,
    beat,
    heartbeat_at,
    holder_id,
)


def register(commands: Any) -> None:
    p = commands.add_parser("run", help="run the scheduler (or, with --once, everything due now)")
    p.add_argument("--once", action="store_true", help="run every job due now, then exit")
    p.add_argument("--json", action="store_true", help="with --once: one JSON object per job")
    p.set_defaults(handler=cmd_run)

    p = commands.add_parser("jobs", help="scheduled jobs")
    sub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="each job's next run, last run and outcome")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_jobs_list)
    one = sub.add_parser("run", help="run one job now, due or not")
    one.add_argument("name", choices=list(REGISTRY))
    one.add_argument("--json", action="store_true")
    one.set_defaults(handler=cmd_jobs_run)

    p = commands.add_parser(
        "health", help="exit 0 if the database answers and the heartbeat is fresh"
    )
    p.set_defaults(handler=cmd_health)


def _real_clock(app: App) -> SystemClock:
    return SystemClock(app.config.settings.tz)


def _with_lease(app: App, runner: Runner, work: Any) -> list[JobOutcome]:
    """Run `work` holding the runner lease; refuse if another runner holds it.

    A what-if takes no lease: it keeps nothing, so it cannot clash with the scheduler."""
    if app.what_if:
        result: list[JobOutcome] = work()
        return result
    clock, holder = _real_clock(app), holder_id()
    ttl = dt.timedelta(seconds=runner.schedule.runner.lease_seconds)
    if not try_acquire(app.engine, RUNNER_LEASE, holder, ttl, clock.now()):
        raise RefusedError(
            "another runner holds the lease (a `credit-repair run` is active); nothing was run"
        )
    with HeldLease(app.engine, RUNNER_LEASE, holder, ttl, clock.now):
        beat(app.engine, holder, clock.now())
        outcomes: list[JobOutcome] = work()
    return outcomes


def cmd_run(app: App, args: argparse.Namespace) -> int:
    if not args.once:
        if args.json:
            raise UsageError("--json goes with --once")
        if app.what_if:
            raise UsageError(
                "调度器只按真实时间运行，不能模拟：请用 run --once / "
                "the scheduler runs on the real clock only: a what-if is `run --once`"
            )
        return Daemon(app, REGISTRY, _real_clock(app)).serve()
    runner = Runner(app, REGISTRY)
    outcomes = _with_lease(app, runner, lambda: runner.run_due(app.clock.now()))
    _print_outcomes(outcomes, args.json)
    return 1 if any(o.outcome == "error" for o in outcomes) else 0


def cmd_jobs_run(app: App, args: argparse.Namespace) -> int:
    runner = Runner(app, REGISTRY)
    outcomes = _with_lease(app, runner, lambda: [runner.run_job(args.name, app.clock.now(), None)])
    _print_outcomes(outcomes, args.json)
    return 1 if outcomes[0].outcome == "error" else 0


def _print_outcomes(outcomes: list[JobOutcome], as_json: bool) -> None:
    for o in outcomes:
        if as_json:
            print_json(o.as_json())
        elif o.ran:
            print(
                f"{o.job}: {o.outcome} {o.counts or ''}{' ' + o.error if o.error else ''}",
                file=sys.stderr,
            )
        else:
            print(f"{o.job}: not due{' (' + o.outcome + ')' if o.outcome else ''}", file=sys.stderr)


def cmd_jobs_list(app: App, args: argparse.Namespace) -> int:
    runner = Runner(app, REGISTRY)
    now = app.clock.now()
    for name, spec in REGISTRY.items():
        last = runner.last_run(name)
        nxt = runner.next_due(name, now) if runner.spec(name).enabled else None
        row = {
            "job": name,
            "enabled": runner.spec(name).enabled,
            "doc": spec.doc,
            "next_run": nxt.isoformat() if nxt else None,
            "last_run": last["started_at"].astimezone(app.config.settings.tz).isoformat()
            if last
            else None,
            "last_outcome": last["outcome"] if last else None,
        }
        if args.json:
            print_json(row)
        else:
            print(
                f"{name:20} next {row['next_run'] or '-':27} last {row['last_run'] or '-':27} {row['last_outcome'] or ''}"
            )
    return 0


def cmd_health(app: App, args: argparse.Namespace) -> int:
    runner = Runner(app, REGISTRY)
    engine = app.unmigrated_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    if current_revision(engine) != head_revision(engine):
        print(
            "unhealthy: the database schema is not initialised or not current (credit-repair init)",
            file=sys.stderr,
        )
        return 1
    last = heartbeat_at(engine)
    stale = dt.timedelta(seconds=runner.schedule.runner.heartbeat_stale_seconds)
    now = _real_clock(app).now()
    if last is None or now - last > stale:
        seen = last.isoformat() if last else "never"
        print(
            f"unhealthy: scheduler heartbeat {seen}, older than {stale.total_seconds():.0f} s",
            file=sys.stderr,
        )
        return 1
    print(
        f"healthy: database answers; heartbeat {(now - last).total_seconds():.0f} s ago",
        file=sys.stderr,
    )
    return 0
