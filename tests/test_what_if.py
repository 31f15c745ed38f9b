"""Exploring never changes the real ledger: a `--now` later than the real clock is a what-if
(computed, printed, nothing kept) unless `--commit`; `--dry-run` does the same at any time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tests.helpers import CliRunner, db_dump

TZ = ZoneInfo("Asia/Shanghai")
REAL_NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=TZ)
FUTURE = "2026-12-29"
NOTICE = "模拟运行"


@pytest.fixture
def loaded(cli: CliRunner) -> Iterator[CliRunner]:
    """The bundled sample synced and evaluated on 2026-11-27, the real clock at 10:00 that day."""
    with time_machine.travel(REAL_NOW, tick=True):
        assert cli("sync", commit=False).code == 0
        assert cli("eligibility", commit=False).code == 0
        yield cli


def _statuses(result_lines: list[dict[str, str]]) -> dict[str, str]:
    return {line["decision_no"]: line["status"] for line in result_lines}


def test_a_future_now_prints_the_future_and_leaves_the_database_byte_identical(
    loaded: CliRunner, db_url: str
) -> None:
    before = db_dump(db_url)
    today = _statuses(loaded("eligibility", "--json", commit=False).json_lines())
    assert db_dump(db_url) == before

    future = loaded("eligibility", "--json", now=FUTURE, commit=False)
    assert future.code == 0
    assert NOTICE in future.err and "--commit" in future.err
    later = _statuses(future.json_lines())
    assert later != today, "the what-if computes as of its --now"
    for args in (
        ("ledger", "show"),
        ("eligibility", "--status", "repairable"),
        ("run", "--once", "--json"),
        ("jobs", "run", "escalate"),
        ("notices", "plan"),
        ("dispatch",),
        ("report", "monthly", "--month", "2026-11"),
        ("sync",),
        ("ledger", "set", next(iter(today)), "--willing", "yes"),
        ("init",),
    ):
        result = loaded(*args, now=FUTURE, commit=False)
        assert result.code == 0, (args, result.err)
        assert NOTICE in result.err, args
        assert db_dump(db_url) == before, f"{args} changed the database"


def test_the_what_if_run_sends_nothing_and_keeps_no_file(
    loaded: CliRunner, db_url: str, tmp_path: Path
) -> None:
    result = loaded("run", "--once", "--json", now=FUTURE + "T09:30", commit=False)
    assert result.code == 0, result.err
    ran = {o["job"]: o for o in result.json_lines() if o["ran"]}
    assert "monthly_report" not in ran or ran["monthly_report"]["outcome"] == "ok"
    assert not (tmp_path / "var" / "reports").exists()
    assert not (tmp_path / "var" / "outbox").exists()


def test_commit_makes_a_future_now_write(loaded: CliRunner, db_url: str) -> None:
    before = db_dump(db_url)
    result = loaded("eligibility", now=FUTURE, commit=True)
    assert result.code == 0
    assert NOTICE not in result.err
    assert db_dump(db_url) != before


def test_dry_run_computes_without_writing_at_any_time(loaded: CliRunner, db_url: str) -> None:
    before = db_dump(db_url)
    with time_machine.travel(REAL_NOW, tick=True):
        for args in (
            ("eligibility", "--dry-run", "--json"),
            ("ledger", "show", "--dry-run"),
            ("report", "period", "--from", "2026-11-01", "--to", "2026-11-27", "--dry-run"),
        ):
            result = loaded(*args, commit=False)
            assert result.code == 0, (args, result.err)
            assert "模拟运行（--dry-run）" in result.err, args
            assert db_dump(db_url) == before, f"{args} changed the database"
    shown = loaded("eligibility", "--dry-run", "--json", now="2026-11-28").json_lines()
    assert shown and db_dump(db_url) == before


def test_a_past_now_replays_on_the_database(loaded: CliRunner, db_url: str) -> None:
    before = db_dump(db_url)
    with time_machine.travel(REAL_NOW, tick=True):
        result = loaded("eligibility", now="2026-11-28T08:00", commit=False)
        assert NOTICE in result.err  # 11-28 08:00 is still after 11-27 10:00: a what-if
        assert db_dump(db_url) == before
        result = loaded("eligibility", now="2026-11-20", commit=False)
    assert NOTICE not in result.err
    assert db_dump(db_url) != before, "a past --now replays, as today"
