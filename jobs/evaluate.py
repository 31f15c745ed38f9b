"""Daily, after sync: recompute eligibility and the automatic ledger transitions."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.ledger import evaluate_all
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    return evaluate_all(app)


SPEC = JobSpec(
    run,
    JobSchedule(cron="30 7 * * *"),
    "recompute eligibility and close expired or vanished entries",
)
