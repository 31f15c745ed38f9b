"""The pipeline's stages, in the order a day runs them: one function each.

==================  ==========================================================  ===================
stage               what it does                                                returns
==================  ==========================================================  ===================
sync                load one target: a configured source, a file, the sample    `SyncResult`
sync_all            every configured target, then the contacts file (the job)   `SyncAllResult`
evaluate            recompute eligibility, then the ledger's transitions        `EvaluateResult`
plan_notices        put every notice due today into the outbox                  `PlanResult`
dispatch            send what the outbox holds                                  `DispatchResult`
remind_departments  the 15th: each department is asked to update its ledger     `ReminderResult`
escalate            by the 20th: late departments, stuck cases one level up     `EscalationResult`
monthly_report      a month's (or a span's) report: workbook, HTML, sent once   `ReportResult`
check_config        validate everything an unattended run will need             `CheckReport`
==================  ==========================================================  ===================

Each takes the `App` (config, business clock, calendar, database) and returns a typed
`pipeline.results.Result`: a command prints it, a job returns it to the runner. Time comes
from ``app.clock``, or from the scheduler's ``now`` where a job is given one; nothing here
parses arguments, prints, or reads the environment.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pipeline import checks
from pipeline.app import App
from pipeline.checks import CheckReport
from pipeline.delivery.dispatcher import DispatchResult
from pipeline.errors import UsageError
from pipeline.ledger.eligibility import Evaluator, Recompute, penalty_count, recompute
from pipeline.ledger.restrictions import apply_list_dates, apply_restrictions
from pipeline.ledger.state import Lifecycle, apply_lifecycle, lifecycle_policy
from pipeline.monthly import escalation
from pipeline.monthly.data import Period
from pipeline.monthly.escalation import EscalationResult, ReminderResult, month_of
from pipeline.monthly.kpis import OVERDUE_DAYS
from pipeline.monthly.run import ReportRequest, ReportResult, build_report
from pipeline.notices import planner
from pipeline.notices.planner import PlanResult
from pipeline.progress import Progress as ProgressBar
from pipeline.sync.contacts import ContactImport, import_contacts
from pipeline.sync.loading import Target, contacts_file, default_targets, file_target, run_target
from pipeline.sync.snapshot import SyncResult
from pipeline.wiring import make_dispatcher, make_planner, report_deadline

Progress = Callable[[int], None]

# --------------------------------------------------------------------------- sync


def sync_targets(
    app: App, source: str | None = None, file: str | None = None, kind: str = "penalties"
) -> list[Target]:
    """What a sync loads: a file, one configured source, or the enabled ones (else the sample)."""
    if file:
        return [file_target(file, kind)]
    if source:
        return [Target(app.config.settings.source(source), source)]
    return default_targets(app.config)


def sync(
    app: App,
    target: Target,
    now: dt.datetime,
    force: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    return run_target(app.engine, app.config, target, now, force, progress)


@dataclass(frozen=True)
class SyncAllResult:
    """Every configured target's result, by target name; then the contacts file's, if any."""

    targets: tuple[tuple[str, SyncResult], ...]
    contacts: ContactImport | None = None

    @property
    def refused(self) -> bool:
        return any(result.refused for _, result in self.targets)

    def as_json(self) -> dict[str, Any]:
        results = [result for _, result in self.targets]
        out: dict[str, Any] = {
            "sources": len(results),
            "added": sum(r.added for r in results),
            "updated": sum(r.updated for r in results),
            "vanished": sum(r.vanished for r in results),
            "quarantined": sum(r.quarantined for r in results),
            "refused": self.refused,
        }
        reasons = [f"{name}: {r.reason}" for name, r in self.targets if r.refused]
        if reasons:
            out["reasons"] = reasons
        if self.contacts is not None:
            out["contacts"] = {
                "added": self.contacts.added,
                "changed": self.contacts.changed,
                "rejected": self.contacts.rejected,
            }
        return out


def sync_all(app: App, now: dt.datetime) -> SyncAllResult:
    """The daily sync: every configured target (never forced), then the contacts file."""
    results = tuple((t.name, sync(app, t, now)) for t in default_targets(app.config))
    contacts = contacts_file(app.config)
    limits = app.config.settings.files.xlsx_limits()
    imported = import_contacts(app.engine, contacts, now, limits) if contacts is not None else None
    return SyncAllResult(results, imported)


# --------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class EvaluateResult:
    recompute: Recompute
    lifecycle: Lifecycle
    restrictions_changed: int = 0
    """Open penalties whose 修复受限 flags changed."""
    list_dates_changed: int = 0
    """List entries whose 可修复时间 / removal date changed (rules.yaml lists)."""

    def as_json(self) -> dict[str, Any]:
        return {
            **self.recompute.as_json(),
            **self.lifecycle.as_json(),
            "restrictions_changed": self.restrictions_changed,
            "list_dates_changed": self.list_dates_changed,
        }


def evaluate(app: App, progress: Progress | None = None) -> EvaluateResult:
    """Recompute eligibility as of today, then the automatic ledger transitions.

    Without `progress`: a bar on a terminal, a log line every 10 s off one."""
    evaluator = Evaluator.from_config(app.config, app.calendar)
    total = penalty_count(app.engine)
    with ProgressBar("计算 / evaluate", unit="条 records", total=total) as bar:
        recomputed = recompute(
            app.engine, evaluator, app.clock.today(), progress=progress or bar.update
        )
    lists = apply_list_dates(app.engine, app.config.rules)
    restricted = apply_restrictions(app.engine, app.config.rules)
    settings, today = app.config.settings, app.clock.today()
    policy = lifecycle_policy(settings.ledger, settings.green_channel, today, app.calendar)
    lifecycle = apply_lifecycle(app.engine, today, app.clock.now(), settings.green_channel, policy)
    return EvaluateResult(recomputed, lifecycle, restricted, lists)


# --------------------------------------------------------------------------- notices


def plan_notices(app: App, dry_run: bool = False) -> PlanResult:
    return planner.plan_notices(
        app.engine, make_planner(app), app.clock.today(), app.clock.now(), dry_run
    )


def dispatch(
    app: App,
    limit: int | None = None,
    stop: threading.Event | None = None,
    progress: ProgressBar | None = None,
) -> DispatchResult:
    """Send what is due, at most `limit` messages; `stop` ends the run between messages.

    Each message handed to a channel steps `progress` (default: a bar on a terminal, a log
    line every 10 s off one)."""
    with requests.Session() as session, ProgressBar("发送 / dispatch", "条 messages") as own:
        dispatcher = make_dispatcher(app, session, progress or own)
        if stop is not None:
            dispatcher.stop = stop
        return dispatcher.run(limit)


# --------------------------------------------------------------------------- the monthly cycle


def remind_departments(app: App, month: str | None = None, dry_run: bool = False) -> ReminderResult:
    month = month or month_of(app.clock.today())
    due = report_deadline(app, month)
    return escalation.department_reminders(
        app.engine,
        app.config,
        make_planner(app),
        month,
        app.clock.today(),
        due,
        app.clock.now(),
        dry_run,
    )


def escalate(app: App, month: str | None = None, dry_run: bool = False) -> EscalationResult:
    month = month or month_of(app.clock.today())
    if month > month_of(app.clock.today()):
        raise UsageError(f"--month {month} is in the future of --now {app.clock.today()}")
    return escalation.escalate(
        app.engine,
        app.config,
        make_planner(app),
        month,
        app.clock.today(),
        app.clock.now(),
        dry_run,
    )


def monthly_report(
    app: App,
    period: Period,
    out: str | None = None,
    send: bool = True,
    resend: bool = False,
    overdue_days: int = OVERDUE_DAYS,
) -> ReportResult:
    """The report of `period`, written to `out` (default paths.reports_dir) and sent once."""
    out_dir = Path(out) if out else Path(app.config.settings.paths.reports_dir)
    request = ReportRequest(period, app.clock.now(), out_dir, send, resend, overdue_days)
    with ProgressBar(f"报告 / report {period.key}", unit="条 records") as bar:
        return build_report(app.engine, app.config, request, bar.update)


# --------------------------------------------------------------------------- config


def check_config(app: App) -> CheckReport:
    return checks.check_config(app)
