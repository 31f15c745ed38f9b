"""Run what is due: each job is an idempotent tick that asks the database what to do.

`run_due` looks at every enabled job: its most recent due time (from the schedule),
and whether a successful run already covered it (``job_runs``). A due time with no
successful run is run **once**, however many ticks were missed while the container
was down — and for the period of that due time (the escalation due on 11-20 is November's,
even when it runs on 12-01: `JobContext.due_at`). A monthly (``by_day``) job is not caught
up for a due time before the installation (`installed_at`: the first `init` or the first
tick): a new installation does not wake up in the middle of a month and chase the
departments for a month nobody asked them about. Daily (cron) jobs run their latest due
time as ever: a new installation loads and evaluates at once. A failed run is retried on
later ticks up to ``runner.max_attempts``; its error is recorded and logged and the other
jobs still run.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.app import App
from pipeline.config.schedule import JobSchedule, ScheduleConfig
from pipeline.db.models import Installation, JobRun, Lease, table_of
from pipeline.logs import get_logger
from pipeline.results import Result
from pipeline.scheduler.schedule import check_jobs, latest_due, next_due
from pipeline.summaries import outcome_line

job_runs = table_of(JobRun)
leases = table_of(Lease)
installation = table_of(Installation)
log = get_logger("runner")
RUNNER_LEASE = "runner"
HEARTBEAT = "heartbeat"
SUCCESS = ("ok", "refused")


@dataclass(frozen=True)
class JobContext:
    name: str
    run_id: str
    due_at: dt.datetime | None
    now: dt.datetime
    options: dict[str, Any]

    def period_month(self, tz: ZoneInfo) -> str:
        """YYYY-MM of the due time (of now, for a run not due): a monthly job's period."""
        day = (self.due_at or self.now).astimezone(tz).date()
        return f"{day.year:04d}-{day.month:02d}"


JobFunc = Callable[[App, JobContext], Result | Mapping[str, Any]]
"""A job: calls one stage, returns its `Result` (recorded as the run's counts); a plain
mapping is taken as the counts themselves."""


@dataclass(frozen=True)
class JobSpec:
    func: JobFunc
    default: JobSchedule
    doc: str


@dataclass
class JobOutcome:
    job: str
    ran: bool
    outcome: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    due_at: dt.datetime | None = None
    error: str | None = None
    run_id: str | None = None

    def summary(self, tz: ZoneInfo) -> str:
        """One line for a person, times in the business zone (`pipeline.summaries`)."""
        return outcome_line(
            self.job, self.ran, self.outcome, self.counts, self.due_at, self.error, tz
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "ran": self.ran,
            "outcome": self.outcome,
            "counts": self.counts,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "error": self.error,
        }


def holder_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


class Runner:
    def __init__(self, app: App, registry: dict[str, JobSpec]) -> None:
        self.app = app
        self.registry = registry
        self.schedule: ScheduleConfig = check_jobs(app.config.schedule, list(registry))
        self.calendar = app.calendar
        self.tz = app.config.settings.tz

    def spec(self, name: str) -> JobSchedule:
        return self.schedule.jobs.get(name) or self.registry[name].default

    def run_due(self, now: dt.datetime) -> list[JobOutcome]:
        return [self._maybe_run(name, now) for name in self.registry]

    def _maybe_run(self, name: str, now: dt.datetime) -> JobOutcome:
        spec = self.spec(name)
        if not spec.enabled:
            return JobOutcome(name, False, "disabled")
        last_ok = self.last_success_due(name)
        due = latest_due(spec, now, self.calendar, self.tz, since=last_ok)
        if due is None or (last_ok is not None and last_ok >= due):
            return JobOutcome(name, False)
        if spec.by_day is not None and due < installed_at(self.engine, now, "runner"):
            return JobOutcome(name, False, "before_installation", due_at=due)
        if self._failures(name, due) >= self.schedule.runner.max_attempts:
            return JobOutcome(name, False, "gave_up", due_at=due)
        return self.run_job(name, now, due)

    def run_job(self, name: str, now: dt.datetime, due: dt.datetime | None) -> JobOutcome:
        run_id = uuid.uuid4().hex[:12]
        context = JobContext(name, run_id, due, now, dict(self.spec(name).options))
        self._record_start(context)
        started = time.monotonic()
        log.info("job.start", job=name, run_id=run_id, due_at=due.isoformat() if due else None)
        try:
            counts = _counts(self.registry[name].func(self.app, context))
        except Exception as exc:  # a job's failure must not stop the others
            outcome = JobOutcome(
                name, True, "error", due_at=due, error=f"{type(exc).__name__}: {exc}", run_id=run_id
            )
            log.error(
                "job.error",
                job=name,
                run_id=run_id,
                error=outcome.error,
                traceback=traceback.format_exc(limit=5),
            )
        else:
            result = "refused" if counts.get("refused") else "ok"
            outcome = JobOutcome(name, True, result, counts, due, run_id=run_id)
        seconds = round(time.monotonic() - started, 3)
        self._record_end(outcome, seconds)
        log.info(
            "job.end",
            job=name,
            run_id=run_id,
            outcome=outcome.outcome,
            seconds=seconds,
            counts=outcome.counts,
            summary=outcome.summary(self.tz),
        )
        return outcome

    # ------------------------------------------------------------------ job_runs
    @property
    def engine(self) -> Engine:
        return self.app.engine

    def last_success_due(self, name: str) -> dt.datetime | None:
        c = job_runs.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.max(c.due_at)).where(c.job == name, c.outcome.in_(SUCCESS))
            ).scalar()

    def last_run(self, name: str) -> dict[str, Any] | None:
        c = job_runs.c
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(job_runs).where(c.job == name).order_by(c.id.desc()).limit(1))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def _failures(self, name: str, due: dt.datetime) -> int:
        c = job_runs.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(c.job == name, c.due_at == due, c.outcome == "error")
                ).scalar_one()
            )

    def _record_start(self, ctx: JobContext) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(job_runs),
                {
                    "run_id": ctx.run_id,
                    "job": ctx.name,
                    "due_at": ctx.due_at,
                    "started_at": ctx.now,
                    "outcome": "running",
                    "host": socket.gethostname(),
                },
            )

    def _record_end(self, outcome: JobOutcome, seconds: float) -> None:
        counts = {**outcome.counts, "seconds": seconds}
        with self.engine.begin() as conn:
            conn.execute(
                update(job_runs).where(job_runs.c.run_id == outcome.run_id),
                {
                    "outcome": outcome.outcome,
                    "counts": _jsonable(counts),
                    "error": outcome.error,
                    "finished_at": self.app.clock.now(),
                },
            )

    def next_due(self, name: str, now: dt.datetime) -> dt.datetime | None:
        return next_due(self.spec(name), now, self.calendar, self.tz)


def installed_at(engine: Engine, now: dt.datetime, how: str) -> dt.datetime:
    """When this installation started its schedule; the first call records `now` (`how`:
    init or runner)."""
    c = installation.c
    with engine.connect() as conn:
        found: dt.datetime | None = conn.execute(select(c.installed_at).where(c.id == 1)).scalar()
    if found is not None:
        return found
    try:
        with engine.begin() as conn:
            conn.execute(insert(installation), {"id": 1, "installed_at": now, "how": how})
    except IntegrityError:  # another replica recorded it first
        with engine.connect() as conn:
            first: dt.datetime = conn.execute(select(c.installed_at).where(c.id == 1)).scalar_one()
        return first
    log.info("installation.recorded", installed_at=now.isoformat(), how=how)
    return now


def beat(engine: Engine, holder: str, now: dt.datetime) -> None:
    """The scheduler's heartbeat (real time), read by `credit-repair health`."""
    c = leases.c
    with engine.begin() as conn:
        changed = conn.execute(
            update(leases).where(c.name == HEARTBEAT).values(holder=holder, heartbeat_at=now)
        ).rowcount
        if not changed:
            conn.execute(insert(leases), {"name": HEARTBEAT, "holder": holder, "heartbeat_at": now})


def heartbeat_at(engine: Engine) -> dt.datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            select(leases.c.heartbeat_at).where(leases.c.name == HEARTBEAT)
        ).scalar()


def _counts(returned: Result | Mapping[str, Any]) -> dict[str, Any]:
    return dict(returned) if isinstance(returned, Mapping) else returned.as_json()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
