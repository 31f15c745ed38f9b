"""Logs: JSON lines off a terminal, personal data masked, secrets never written."""

from __future__ import annotations

import json

import pytest

from pipeline import logs
from tests.helpers import CliRunner


def test_phones_emails_names_and_secrets_are_masked_in_json_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", "json")
    logs.get_logger("test").info(
        "notice.sent",
        recipient="13812345678",
        email="zhang.san@example.com",
        contact_name="张三丰",
        password="hunter2",
        note="call +8613912345678 or write to li@example.org",
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["recipient"] == "138****5678"
    assert line["email"] == "z***@example.com"
    assert line["contact_name"] == "张**"
    assert line["password"] == "***"
    assert "13912345678" not in line["note"] and "li@example.org" not in line["note"]
    assert (
        line["event"] == "notice.sent"
        and line["level"] == "info"
        and line["timestamp"].endswith("Z")
    )


def test_levels_below_the_configured_one_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("warning", "json")
    logger = logs.get_logger("test")
    logger.info("quiet")
    logger.warning("loud")
    events = [json.loads(x)["event"] for x in capsys.readouterr().err.strip().splitlines()]
    assert events == ["loud"]


def test_a_job_run_logs_start_and_end_with_its_run_id_and_counts(cli: CliRunner) -> None:
    result = cli("jobs", "run", "evaluate", now="2026-11-27T09:00")
    events = [json.loads(x) for x in result.err.splitlines() if x.startswith("{")]
    start = next(e for e in events if e["event"] == "job.start")
    end = next(e for e in events if e["event"] == "job.end")
    assert start["run_id"] == end["run_id"] and end["job"] == "evaluate"
    assert "seconds" in end and "evaluated" in end["counts"]
