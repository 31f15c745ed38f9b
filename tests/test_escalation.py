"""Reminders and the escalation ladder (by the 20th), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, insert

from pipeline.db.models import DepartmentReport, OutboxMessage, table_of
from tests.helpers import CliRunner, penalty, write_rows

DEPARTMENTS = ("SWJ", "YJJ", "SCJG", "STHJ", "ZJJ", "XFJY")


def _asked(engine: Engine, month: str, departments: tuple[str, ...] = DEPARTMENTS) -> None:
    """Each department got its monthly reminder for `month` (what the reminder day records):
    a department is escalated as not reported only once it was asked."""
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(table_of(OutboxMessage)),
            [
                {
                    "key": f"department_reminder|{code}|{month}",
                    "department_code": code,
                    "kind": "department_reminder",
                    "occurrence": month,
                    "channel": "email",
                    "recipient": f"{code}@example.org",
                    "state": "written",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "payload": {},
                    "created_at": at,
                    "updated_at": at,
                }
                for code in departments
            ],
        )


def _report(engine: Engine, department: str, month: str) -> None:
    """A department's monthly report received (what a ledger import records)."""
    with engine.begin() as conn:
        conn.execute(
            insert(table_of(DepartmentReport)),
            {
                "department_code": department,
                "month": month,
                "file": "x.xlsx",
                "received_at": dt.datetime(2026, 11, 10, tzinfo=dt.UTC),
            },
        )


def _escalate(cli: CliRunner, now: str, *args: str) -> dict[str, object]:
    result = cli("escalate", "--json", *args, now=now)
    assert result.code == 0, result.err
    body: dict[str, object] = result.json()
    return body


def _items(body: dict[str, object], reason: str) -> list[dict[str, object]]:
    return [i for i in body["items"] if i["reason"] == reason]  # type: ignore[union-attr, index]


def test_a_department_that_never_reports_climbs_one_level_a_month(
    cli: CliRunner, engine: Engine
) -> None:
    _asked(engine, "2026-09")
    for dep in ("YJJ", "SCJG", "STHJ", "ZJJ", "XFJY"):
        for month in ("2026-09", "2026-10", "2026-11", "2026-12"):
            _report(engine, dep, month)
    levels = []
    for now in ("2026-09-18T09:00", "2026-10-20T09:00", "2026-11-20T09:00", "2026-12-18T09:00"):
        body = _escalate(cli, now)
        [item] = _items(body, "not_reported")
        assert item["department_code"] == "SWJ"
        levels.append(item["level"])
    assert levels == [1, 2, 3, 3]
    recipients = [
        r["recipient"] for r in cli("outbox", "--kind", "escalation", "--json").json_lines()
    ]
    assert recipients == [
        "tax@example.org",
        "tax-head@example.org",
        "credit-bureau@example.org",
        "credit-bureau@example.org",
    ]


def test_escalating_twice_in_a_month_changes_nothing(cli: CliRunner, engine: Engine) -> None:
    _asked(engine, "2026-11")
    first = _escalate(cli, "2026-11-20T09:00")
    second = _escalate(cli, "2026-11-20T15:00")
    assert first["escalated"] == 6 and first["digests"] == 6
    assert (second["escalated"], second["already_this_month"], second["digests"]) == (0, 6, 0)


def test_a_department_that_reported_is_not_escalated(cli: CliRunner, engine: Engine) -> None:
    _asked(engine, "2026-11")
    _report(engine, "SWJ", "2026-11")
    body = _escalate(cli, "2026-11-20T09:00")
    assert "SWJ" not in {i["department_code"] for i in _items(body, "not_reported")}


def test_stuck_and_past_planned_cases_and_undelivered_notices_escalate(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1, CF_JDRQ="2026-05-06"), penalty(2, CF_JDRQ="2026-05-06"), penalty(3)]
    cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows)), now="2026-11-20")
    cli("eligibility", now="2026-11-20")
    cli(
        "ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes", now="2026-11-20"
    )  # repairable since 2026-08-07
    cli("ledger", "set", "宝税罚〔2026〕2号", "--planned", "2026-11-01", now="2026-11-20")
    body = _escalate(cli, "2026-11-20T09:00")
    [stuck] = _items(body, "stuck")
    [late] = _items(body, "past_planned")
    assert stuck["decision_no"] == "宝税罚〔2026〕1号" and "天未申请" in str(stuck["detail"])
    assert late["decision_no"] == "宝税罚〔2026〕2号"
    digest = next(
        r
        for r in cli("outbox", "--kind", "escalation", "--json").json_lines()
        if r["recipient"] == "tax@example.org"
    )
    assert digest["state"] == "pending"


def test_the_reminder_day_sends_each_department_one_digest_a_month(
    cli: CliRunner, tmp_path: Path
) -> None:
    cli(
        "sync",
        "--file",
        str(write_rows(tmp_path / "p.csv", [penalty(1), penalty(2)])),
        now="2026-11-13",
    )
    cli("eligibility", now="2026-11-13")
    first = cli("remind", "--json", now="2026-11-13T09:00").json()
    again = cli("remind", "--json", now="2026-11-13T10:00").json()
    assert (first["departments"], first["planned"], again["planned"]) == (1, 1, 0)
    [row] = cli("outbox", "--kind", "department_reminder", "--json").json_lines()
    assert row["recipient"] == "tax@example.org"
    preview = cli("dispatch", "--json", now="2026-11-13T10:00").json()
    assert preview["written"] >= 1  # no SMTP configured: written to a file, not sent


def test_a_department_never_asked_is_not_escalated_as_not_reported(
    cli: CliRunner, engine: Engine
) -> None:
    assert _items(_escalate(cli, "2026-11-20T09:00"), "not_reported") == []
    _asked(engine, "2026-12", ("SWJ",))  # first asked in December: not late for November
    assert _items(_escalate(cli, "2026-11-20T10:00"), "not_reported") == []
    [item] = _items(_escalate(cli, "2026-12-18T09:00"), "not_reported")
    assert item["department_code"] == "SWJ"
