"""A new installation does not wake up in the middle of a month; catch-up runs a missed job
for the period of its due time; an empty report is written and logged, not mailed."""

from __future__ import annotations

from typing import Any

from tests.helpers import CliRunner


def _ran(cli: CliRunner, now: str) -> dict[str, dict[str, Any]]:
    result = cli("run", "--once", "--json", now=now)
    assert result.code == 0, result.err
    return {o["job"]: o for o in result.json_lines()}


def _kinds(cli: CliRunner) -> list[str]:
    return sorted({row["kind"] for row in cli("outbox", "--json").json_lines()})


def test_a_first_run_on_the_first_of_a_month_escalates_nothing_and_reports_nothing(
    empty_cli: CliRunner,
) -> None:
    jobs = _ran(empty_cli, "2026-12-01T09:30")
    assert jobs["sync"]["ran"] and jobs["evaluate"]["ran"], "a new installation loads at once"
    for name in ("department_reminder", "escalate", "monthly_report"):
        assert not jobs[name]["ran"], name
        assert jobs[name]["outcome"] == "before_installation"
    kinds = _kinds(empty_cli)
    assert "escalation" not in kinds and "monthly_report" not in kinds
    assert "department_reminder" not in kinds
    again = _ran(empty_cli, "2026-12-01T10:30")
    assert not any(o["ran"] for o in again.values() if o["job"] != "dispatch")


def test_catch_up_after_an_outage_over_the_20th_runs_each_job_for_its_own_month(
    empty_cli: CliRunner,
) -> None:
    _ran(empty_cli, "2026-10-26T09:30")  # installed in October, after October's monthly jobs
    for name, o in _ran(empty_cli, "2026-11-02T09:30").items():
        assert not o["ran"] or name in ("sync", "evaluate", "plan_notices", "dispatch"), name
    # down from 11-02 until 12-01: the reminder (11-13), escalation and report (11-20) missed
    jobs = _ran(empty_cli, "2026-12-01T09:30")
    assert jobs["department_reminder"]["counts"]["month"] == "2026-11"
    assert jobs["escalate"]["counts"]["month"] == "2026-11"
    assert jobs["escalate"]["due_at"] == "2026-11-20T09:00:00+08:00"
    assert jobs["monthly_report"]["counts"]["period"] == "2026-10"
    escalated = empty_cli("escalate", "--month", "2026-11", "--json", now="2026-12-01T10:00")
    assert escalated.json()["escalated"] == 0, "November's escalation is done; none for December"
    digests = empty_cli("outbox", "--kind", "escalation", "--json").json_lines()
    assert digests and {r["occurrence"] for r in digests} == {"2026-11"}


def test_an_empty_report_is_written_and_logged_not_mailed(
    empty_cli: CliRunner, tmp_path: Any
) -> None:
    result = empty_cli("report", "monthly", "--month", "2026-10", "--json", now="2026-11-20T09:00")
    assert result.code == 0, result.err
    body = result.json()
    assert (body["total"]["records"], body["send"], body["sent"]) == (0, "empty_not_sent", 0)
    assert "report.empty_not_sent" in result.err
    assert (tmp_path / body["files"]["xlsx"]).exists()
    assert "monthly_report" not in _kinds(empty_cli)
