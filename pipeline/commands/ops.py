"""run, jobs list, jobs run, health."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from pipeline.commands.text import table
from pipeline.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from pipeline.app import App
    from pipeline.clock import SystemClock
    from pipeline.scheduler.runner import JobOutcome, Runner

JOBS = (
    "sync",
    "evaluate",
    "plan_notices",
    "department_reminder",
    "escalate",
    "monthly_report",
    "dispatch",
)
"""`jobs.REGISTRY`'s names in its order (kept equal by tests/test_cli_text.py), here so that
building the parser imports no job."""


def register(commands: Any) -> None:
    p = commands.add_parser(
        "run",
        help="运行调度器（--once：运行当前到期的全部任务后退出）/ "
        "run the scheduler (or, with --once, everything due now)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="运行当前到期的全部任务后退出 / run every job due now, then exit",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="与 --once 同用：每个任务一个 JSON 对象 / with --once: one JSON object per job",
    )
    p.set_defaults(handler=cmd_run)

    p = commands.add_parser("jobs", help="计划任务 / scheduled jobs")
    sub = p.add_subparsers(
        dest="jobs_command", metavar="ACTION", required=True, title="操作 / actions"
    )
    lst = sub.add_parser(
        "list",
        help="各任务的下次运行、上次运行及结果 / each job's next run, last run and outcome",
    )
    lst.add_argument(
        "--json", action="store_true", help="每个任务一个 JSON 对象 / one JSON object a job"
    )
    lst.set_defaults(handler=cmd_jobs_list)
    one = sub.add_parser(
        "run", help="立即运行一个任务（无论是否到期）/ run one job now, due or not"
    )
    one.add_argument("name", choices=JOBS, help="任务名称 / the job's name")
    one.add_argument("--json", action="store_true", help="以 JSON 输出 / the outcome as JSON")
    one.set_defaults(handler=cmd_jobs_run)

    p = commands.add_parser(
        "health",
        help="数据库可用且调度心跳新鲜时返回 0 / exit 0 if the database answers and the heartbeat is fresh",
    )
    p.set_defaults(handler=cmd_health)


def _real_clock(app: App) -> SystemClock:
    from pipeline.clock import SystemClock

    return SystemClock(app.config.settings.tz)


def _with_lease(app: App, runner: Runner, work: Any) -> list[JobOutcome]:
    """Run `work` holding the runner lease; refuse if another runner holds it.

    A what-if takes no lease: it keeps nothing, so it cannot clash with the scheduler."""
    from pipeline.scheduler.lease import HeldLease, try_acquire
    from pipeline.scheduler.runner import RUNNER_LEASE, beat, holder_id

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
    from jobs import REGISTRY
    from pipeline.scheduler.runner import Runner

    if not args.once:
        if args.json:
            raise UsageError("--json goes with --once")
        if app.what_if:
            raise UsageError(
                "调度器只按真实时间运行，不能模拟：请用 run --once / "
                "the scheduler runs on the real clock only: a what-if is `run --once`"
            )
        from pipeline.scheduler.daemon import Daemon

        return Daemon(app, REGISTRY, _real_clock(app)).serve()
    runner = Runner(app, REGISTRY)
    outcomes = _with_lease(app, runner, lambda: runner.run_due(app.clock.now()))
    _print_outcomes(app, outcomes, args.json)
    return 1 if any(o.outcome == "error" for o in outcomes) else 0


def cmd_jobs_run(app: App, args: argparse.Namespace) -> int:
    from jobs import REGISTRY
    from pipeline.scheduler.runner import Runner

    runner = Runner(app, REGISTRY)
    outcomes = _with_lease(app, runner, lambda: [runner.run_job(args.name, app.clock.now(), None)])
    _print_outcomes(app, outcomes, args.json)
    return 1 if outcomes[0].outcome == "error" else 0


def _print_outcomes(app: App, outcomes: list[JobOutcome], as_json: bool) -> None:
    from pipeline.app import print_json

    for o in outcomes:
        if as_json:
            print_json(o.as_json())
        else:
            print(o.summary(app.config.settings.tz), file=sys.stderr)


def cmd_jobs_list(app: App, args: argparse.Namespace) -> int:
    from jobs import REGISTRY
    from pipeline.app import print_json
    from pipeline.scheduler.runner import Runner
    from pipeline.summaries import JOB_NAMES, OUTCOMES, local_time

    runner = Runner(app, REGISTRY)
    now, tz = app.clock.now(), app.config.settings.tz
    rows: list[dict[str, Any]] = []
    for name, spec in REGISTRY.items():
        last = runner.last_run(name)
        nxt = runner.next_due(name, now) if runner.spec(name).enabled else None
        rows.append(
            {
                "job": name,
                "enabled": runner.spec(name).enabled,
                "doc": spec.doc,
                "next_run": nxt.isoformat() if nxt else None,
                "last_run": last["started_at"].astimezone(tz).isoformat() if last else None,
                "last_outcome": last["outcome"] if last else None,
            }
        )
        if args.json:
            print_json(rows[-1])
    if args.json:
        return 0
    table(
        ("任务 job", "名称", "下次运行 next run", "上次运行 last run", "上次结果 outcome"),
        (
            (
                row["job"],
                JOB_NAMES.get(row["job"], ""),
                local_time(dt.datetime.fromisoformat(row["next_run"]), tz)
                if row["next_run"]
                else ("已停用 disabled" if not row["enabled"] else "-"),
                local_time(dt.datetime.fromisoformat(row["last_run"]), tz)
                if row["last_run"]
                else "从未运行 never",
                f"{OUTCOMES.get(row['last_outcome'], row['last_outcome'])} ({row['last_outcome']})"
                if row["last_outcome"]
                else "-",
            )
            for row in rows
        ),
    )
    return 0


def cmd_health(app: App, args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from jobs import REGISTRY
    from pipeline.db.migrate import current_revision, head_revision
    from pipeline.scheduler.runner import Runner, heartbeat_at

    runner = Runner(app, REGISTRY)
    engine = app.unmigrated_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    if current_revision(engine) != head_revision(engine):
        print(
            "不健康：数据库结构未初始化或不是当前版本（credit-repair init）/ "
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
            f"不健康：调度心跳 {seen}，超过 {stale.total_seconds():.0f} 秒 / "
            f"unhealthy: scheduler heartbeat {seen}, older than {stale.total_seconds():.0f} s",
            file=sys.stderr,
        )
        return 1
    print(
        f"健康：数据库可用，心跳 {(now - last).total_seconds():.0f} 秒前 / "
        f"healthy: database answers; heartbeat {(now - last).total_seconds():.0f} s ago",
        file=sys.stderr,
    )
    return 0
