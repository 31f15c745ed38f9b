"""Every few minutes within the allowed hours: send what the outbox holds."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.delivery.dispatcher import DispatchResult
from pipeline.scheduler.daemon import stopping
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> DispatchResult:
    limit = ctx.options.get("limit")
    return stages.dispatch(app, int(limit) if limit else None, stop=stopping)


SPEC = JobSpec(run, JobSchedule(cron="*/5 8-20 * * *"), "send due notices (SMS only 08:00–21:00)")
