"""Daily, after sync: recompute eligibility and the automatic ledger transitions."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> stages.EvaluateResult:
    return stages.evaluate(app)


SPEC = JobSpec(
    run,
    JobSchedule(cron="30 7 * * *"),
    "recompute eligibility and close expired or vanished entries",
)
