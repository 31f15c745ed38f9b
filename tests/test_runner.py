"""The runner: due times in Beijing time whatever the host zone, catch-up once, failures contained."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.app import App
from pipeline.clock import FixedClock
from pipeline.config import load_config
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec, Runner

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The container's zone is UTC; the business zone stays Asia/Shanghai."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dt.datetime | None]] = []

    def job(self, name: str, fail: bool = False) -> Any:
        def run(app: App, ctx: JobContext) -> dict[str, Any]:
            self.seen.append((name, ctx.due_at))
            if fail:
                raise RuntimeError(f"{name} broke")
            return {"done": 1}

        return run


@pytest.fixture
def bare(tmp_path: Path, config_dir: Path) -> Path:
    """The shipped config without its job schedule: these tests bring their own jobs."""
    folder = tmp_path / "cfg"
    shutil.copytree(config_dir, folder)
    (folder / "schedule.yaml").write_text("runner:\n  max_attempts: 3\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_runner(db_url: str, bare: Path) -> Iterator[Any]:
    """A Runner over the test database for a registry of fake jobs; engines closed afterwards."""
    apps: list[App] = []

    def make(registry: dict[str, JobSpec], now: str) -> Runner:
        config = load_config(bare, env={"CREDIT_REPAIR_DATABASE_URL": db_url})
        apps.append(App(config, FixedClock(at(now))))
        return Runner(apps[-1], registry)

    yield make
    for app in apps:
        app.close()


def _registry(calls: Calls, **specs: JobSchedule) -> dict[str, JobSpec]:
    return {name: JobSpec(calls.job(name), spec, name) for name, spec in specs.items()}


def test_a_0900_job_fires_at_0900_beijing_time_on_a_utc_host(
    utc_host: None, make_runner: Any
) -> None:
    calls = Calls()
    registry = _registry(calls, morning=JobSchedule(cron="0 9 * * *"))
    runner = make_runner(registry, "2026-11-26T09:00")
    runner.run_due(at("2026-11-26T09:00"))
    assert [o.ran for o in runner.run_due(at("2026-11-27T08:59"))] == [False]  # 00:59 UTC
    outcome = runner.run_due(at("2026-11-27T09:00"))[0]
    assert outcome.ran and outcome.due_at == at("2026-11-27T09:00")
    assert runner.next_due("morning", at("2026-11-27T09:00")) == at("2026-11-28T09:00")
    assert runner.next_due("morning", at("2026-11-27T09:00")).isoformat().endswith("+08:00")  # type: ignore[union-attr]


def test_an_outage_over_the_20th_ends_in_one_catch_up_run_of_each_monthly_job(
    make_runner: Any,
) -> None:
    calls = Calls()
    registry = _registry(
        calls,
        reminder=JobSchedule(by_day=15),
        escalate=JobSchedule(by_day=20),
        report=JobSchedule(by_day=20),
    )
    runner = make_runner(registry, "2026-10-21T10:00")
    runner.run_due(at("2026-10-21T10:00"))  # October's runs done
    calls.seen.clear()
    for tick in (
        "2026-11-25T10:00",
        "2026-11-25T10:01",
        "2026-11-26T10:00",
    ):  # back up after the outage
        runner.run_due(at(tick))
    assert sorted(calls.seen) == [
        ("escalate", at("2026-11-20T09:00")),
        ("reminder", at("2026-11-13T09:00")),
        ("report", at("2026-11-20T09:00")),
    ]
    # 2026-11-15 is a Sunday: "by the 15th" means Friday the 13th; the 20th is a Friday


def test_by_the_20th_moves_to_the_last_working_day_before_it(make_runner: Any) -> None:
    registry = _registry(Calls(), report=JobSchedule(by_day=20))
    runner = make_runner(registry, "2026-12-01T10:00")
    assert runner.next_due("report", at("2026-12-01T10:00")) == at(
        "2026-12-18T09:00"
    )  # the 20th is a Sunday
    strict = _registry(Calls(), report=JobSchedule(by_day=20, working_day_before=False))
    assert make_runner(strict, "2026-12-01T10:00").next_due("report", at("2026-12-01T10:00")) == at(
        "2026-12-20T09:00"
    )


def test_a_job_that_raises_is_recorded_and_the_others_still_run(make_runner: Any) -> None:
    calls = Calls()
    registry = {
        "broken": JobSpec(calls.job("broken", fail=True), JobSchedule(cron="0 7 * * *"), ""),
        "fine": JobSpec(calls.job("fine"), JobSchedule(cron="0 8 * * *"), ""),
    }
    runner = make_runner(registry, "2026-11-27T09:00")
    outcomes = {o.job: o for o in runner.run_due(at("2026-11-27T09:00"))}
    assert outcomes["broken"].outcome == "error" and "broken broke" in (
        outcomes["broken"].error or ""
    )
    assert outcomes["fine"].outcome == "ok"
    last = runner.last_run("broken")
    assert last is not None and last["outcome"] == "error" and "broke" in last["error"]
    # retried on later ticks, at most runner.max_attempts (3) times for one due time
    for minute in range(1, 5):
        runner.run_due(at(f"2026-11-27T09:0{minute}"))
    assert [name for name, _ in calls.seen].count("broken") == 3
    assert runner.run_due(at("2026-11-27T09:06"))[0].outcome == "gave_up"


def test_a_second_run_once_at_the_same_moment_does_nothing_new(cli: Any) -> None:
    first = cli("run", "--once", "--json", now="2026-11-27T09:30").json_lines()
    assert {o["job"] for o in first if o["ran"]} >= {"sync", "evaluate", "plan_notices", "dispatch"}
    assert all(o["outcome"] == "ok" for o in first if o["ran"]), first
    second = cli("run", "--once", "--json", now="2026-11-27T09:30").json_lines()
    assert [o for o in second if o["ran"]] == []


def test_jobs_list_shows_next_runs_with_their_utc_offset(cli: Any) -> None:
    cli("run", "--once", now="2026-11-27T09:30")
    rows = {r["job"]: r for r in cli("jobs", "list", "--json", now="2026-11-27T09:30").json_lines()}
    assert rows["sync"]["next_run"] == "2026-11-28T07:00:00+08:00"
    assert rows["sync"]["last_outcome"] == "ok"


def test_health_needs_a_fresh_heartbeat(empty_cli: Any) -> None:
    assert empty_cli("health").code == 1  # nothing ever ran
    empty_cli("run", "--once", now="2026-11-27T09:30")
    assert empty_cli("health").code == 0
