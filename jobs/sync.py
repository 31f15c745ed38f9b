"""Daily: load every configured source (or the bundled sample) into the ledger."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> stages.SyncAllResult:
    return stages.sync_all(app, ctx.now)


SPEC = JobSpec(run, JobSchedule(cron="0 7 * * *"), "load the penalty and severe-list snapshots")
