"""Monthly, by the 20th: the previous month's report, written and sent once.

The month is the one before the due time's (caught up on 12-01, the run due on 11-20 still
reports October).

Options (schedule.yaml ``jobs.monthly_report.options``): ``month: current`` reports the
current month up to now instead of the previous one; ``overdue_days: N``.
"""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.monthly.data import month_period, previous_month
from pipeline.monthly.kpis import OVERDUE_DAYS
from pipeline.results import Counts
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> Counts:
    today = (ctx.due_at or ctx.now).astimezone(app.config.settings.tz).date()  # its period's
    if ctx.options.get("month") == "current":
        period = month_period(f"{today.year:04d}-{today.month:02d}")
    else:
        period = previous_month(today)
    result = stages.monthly_report(
        app, period, overdue_days=int(ctx.options.get("overdue_days", OVERDUE_DAYS))
    )
    total = result.total
    return Counts(
        {
            "period": result.period,
            "records": total["records"],
            "told_rate": total["told_rate"],
            "aware_rate": total["aware_rate"],
            "repair_rate": total["repair_rate"],
            "overdue": total["overdue"],
            "send": result.send,
            "sent": result.sent,
            "files": result.files,
        }
    )


SPEC = JobSpec(
    run,
    JobSchedule(by_day=20, at="09:00", working_day_before=True),
    "the previous month's report (workbook + HTML summary), sent to the bureau and departments",
)
