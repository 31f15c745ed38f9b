"""Daily: load every configured source (or the bundled sample) into the ledger."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec
from pipeline.sync.contacts import import_contacts
from pipeline.sync.loading import contacts_file, default_targets, run_target


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "sources": 0,
        "added": 0,
        "updated": 0,
        "vanished": 0,
        "quarantined": 0,
        "refused": False,
    }
    for target in default_targets(app.config):
        result = run_target(app.engine, app.config, target, ctx.now, force=False)
        counts["sources"] += 1
        for key in ("added", "updated", "vanished", "quarantined"):
            counts[key] += getattr(result, key)
        counts["refused"] = counts["refused"] or result.refused
        if result.refused:
            counts.setdefault("reasons", []).append(f"{target.name}: {result.reason}")
    contacts = contacts_file(app.config)
    if contacts is not None:
        imported = import_contacts(app.engine, contacts, ctx.now)
        counts["contacts"] = {
            "added": imported.added,
            "changed": imported.changed,
            "rejected": imported.rejected,
        }
    return counts


SPEC = JobSpec(run, JobSchedule(cron="0 7 * * *"), "load the penalty and severe-list snapshots")
