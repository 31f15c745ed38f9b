"""Operators read Chinese: help texts, labels, tables with a header row, empty results, job
summaries and log times in the business zone, progress, and a command line that starts fast."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import arguments, build_parser, parsers
from pipeline.commands import data, ledger, notices, ops, reports
from pipeline.commands.text import NO_ROWS
from pipeline.domain.uscc import make_uscc
from pipeline.ledger.state import STATUS_NAMES
from pipeline.progress import Progress
from pipeline.sync.samplegen import org_code
from tests.helpers import CliRunner, penalty, write_rows

CJK = re.compile(r"[\u4e00-\u9fff]")
DISTRICT_AUTHORITY = make_uscc("11230506" + org_code("99999999"))
"""An authority located in the district that no department of departments.yaml claims."""


def test_every_command_and_option_has_a_help_text_chinese_first_then_english() -> None:
    parser = build_parser()
    seen = list(arguments(parser))
    assert len({path for path, _, _ in seen}) >= 20  # every command and action was reached
    for path, argument, text in seen:
        where = f"credit-repair {path} {argument}".replace("  ", " ")
        assert text, f"{where}: no help text"
        chinese, *rest = re.split(r" ?/ ", text, maxsplit=1)
        english = rest[0] if rest else ""
        assert CJK.search(chinese), f"{where}: not Chinese first: {text!r}"
        assert re.search(r"[A-Za-z]{3}", english), f"{where}: no English after: {text!r}"
    for path, sub in parsers(parser):  # each command's --help renders (public API)
        assert "显示本帮助并退出" in sub.format_help(), path


def test_the_parser_s_choices_are_the_library_s() -> None:
    from jobs import REGISTRY
    from pipeline.config.notices import KINDS
    from pipeline.ledger.state import CONFIRMATIONS, NOTIFY_METHODS
    from pipeline.monthly.kpis import OVERDUE_DAYS
    from pipeline.notices.outbox import STATES
    from pipeline.sync.loading import KINDS as SNAPSHOT_KINDS

    assert set(data.SNAPSHOT_KINDS) == set(SNAPSHOT_KINDS)
    assert tuple(CONFIRMATIONS) == ledger.CONFIRMATIONS
    assert tuple(NOTIFY_METHODS) == ledger.NOTIFY_METHODS
    assert set(ledger.STATUSES) == set(STATUS_NAMES)
    assert notices.KINDS == KINDS and notices.STATES == STATES
    assert set(notices.STATE_NAMES) == set(STATES)
    assert tuple(REGISTRY) == ops.JOBS
    assert reports.OVERDUE_DAYS == OVERDUE_DAYS


def test_building_the_parser_imports_no_database_config_or_template_module() -> None:
    code = (
        "import sys; from pipeline.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'jinja2', 'openpyxl', 'alembic', "
        "'structlog', 'requests', 'docx', 'apscheduler') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.fixture
def loaded(cli: CliRunner, tmp_path: Path) -> CliRunner:
    rows = [
        penalty(1, CF_JDRQ="2026-05-06"),  # repairable since 2026-08-07
        penalty(2),  # in its minimum period until 2026-12-28
        penalty(3, CF_CFJG="宝山区某新设机关", CF_CFJGDM=DISTRICT_AUTHORITY),  # 未匹配部门
    ]
    assert cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows))).code == 0
    return cli


def test_eligibility_prints_a_header_and_chinese_statuses_with_their_codes(
    loaded: CliRunner,
) -> None:
    result = loaded("eligibility", "--status", "repairable")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("文号") and "状态 status" in lines[0]
    assert "可修复 (repairable)" in lines[1] and "宝税罚〔2026〕1号" in lines[1]
    assert len(lines) == 2
    assert "可修复 1" in result.err and "最短公示期内" in result.err and "{" not in result.err
    assert loaded("eligibility", "--json").json_lines()[0]["status"] in STATUS_NAMES  # codes


def test_ledger_show_prints_a_header_chinese_statuses_progress_and_flags(
    loaded: CliRunner,
) -> None:
    loaded("eligibility")
    result = loaded("ledger", "show")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split()[:2] == ["部门", "绿色通道"] and "提示 flags" in header
    text = "\n".join(rows)
    assert "可修复 (repairable)" in text and "最短公示期内 (in_min_period)" in text
    assert "0 未告知" in text and "未匹配部门" in text
    flags = [r["flags"] for r in loaded("ledger", "show", "--json").json_lines()]
    assert ["unrouted"] in flags  # --json keeps the codes


def test_an_empty_result_says_so_and_exits_0(cli: CliRunner) -> None:
    for args in (
        ("ledger", "show"),
        ("eligibility",),
        ("outbox",),
        ("quarantine",),
        ("ledger", "show", "--department", "SWJ"),
    ):
        result = cli(*args)
        assert (result.code, result.out.strip()) == (0, NO_ROWS), args


def test_an_unknown_department_is_an_error_naming_the_known_codes(cli: CliRunner) -> None:
    for args in (("ledger", "show"), ("eligibility",), ("ledger", "export", "--out", "x.xlsx")):
        result = cli(*args, "--department", "NOPE")
        assert result.code == 2, args
        assert "'NOPE'" in result.err and "SWJ" in result.err and "YJJ" in result.err, result.err


def test_run_once_says_one_line_per_job_in_the_business_zone(cli: CliRunner) -> None:
    result = cli("run", "--once", now="2026-11-27T09:30")
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if not line.startswith("{")]
    jobs = [line for line in lines if line.split()[0] in ops.JOBS]
    assert [line.split()[0] for line in jobs] == list(ops.JOBS)
    assert "sync 同步 [完成 ok] 到期 2026-11-27 07:00 +08:00：" in result.err
    assert "evaluate 评估 [完成 ok]" in result.err and "可修复" in result.err
    for line in jobs:
        assert "None" not in line and "{" not in line and "'" not in line, line


def test_log_lines_carry_the_business_zone_and_each_job_s_summary(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_LOGGING__FORMAT", "json")
    result = cli("jobs", "run", "evaluate", now="2026-11-27T09:30")
    events = [json.loads(x) for x in result.err.splitlines() if x.startswith("{")]
    end = next(e for e in events if e["event"] == "job.end")
    assert end["timestamp"].endswith("+08:00")
    assert end["summary"].startswith("evaluate 评估 [完成 ok]")


def test_jobs_list_prints_a_header_and_times_in_the_business_zone(cli: CliRunner) -> None:
    cli("run", "--once", now="2026-11-27T09:30")
    header, *rows = cli("jobs", "list", now="2026-11-27T09:30").out.splitlines()
    assert header.startswith("任务 job") and "下次运行 next run" in header
    sync = next(r for r in rows if r.startswith("sync"))
    assert "2026-11-28 07:00 +08:00" in sync and "完成 (ok)" in sync


def test_notices_plan_before_any_evaluation_evaluates_first(cli: CliRunner, tmp_path: Path) -> None:
    empty = cli("notices", "plan")
    assert empty.code == 0 and "没有计划任何通知" in empty.err and "sync" in empty.err
    rows = [penalty(1, CF_JDRQ="2026-05-06")]
    cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows)))
    result = cli("notices", "plan")
    assert result.code == 0
    assert "先按 2026-11-27 计算了 1 条记录" in result.err
    assert "告知书 1" in result.err  # planned on dates computed just now
    again = cli("notices", "plan")
    assert "先按" not in again.err
    assert "没有计划任何通知" in again.err and "1 条此前已计划" in again.err


def test_progress_draws_a_bar_on_a_terminal_and_logs_off_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with Progress("同步 / sync", unit="行", stream=screen, total=200) as bar:
        for done in (50, 100, 200):
            bar.drawn = 0.0  # redraw every update here
            bar.update(done)
    assert "█" in screen.getvalue() and "100% 200/200 行" in screen.getvalue()

    from pipeline import logs

    logs.configure("info", "json")
    pipe = io.StringIO()
    with Progress("计算 / evaluate", stream=pipe, every=0.0) as bar:
        bar.update(10)
        bar.update(20)
    assert pipe.getvalue() == ""  # no bar off a terminal
    logged = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert [(e["event"], e["done"]) for e in logged] == [("progress", 10), ("progress", 20)]


def test_a_job_summary_reads_plainly_for_each_job() -> None:
    from pipeline.summaries import job_summary

    assert job_summary(
        "escalate",
        {
            "month": "2026-11",
            "found": {"stuck": 2},
            "escalated": 2,
            "by_level": {"1": 2},
            "digests": 1,
        },
    ) == ("2026-11 月：发现 2，升级 2（1级 2），督办邮件 1")
    assert "告知率 —" in job_summary("monthly_report", {"period": "2026-10", "told_rate": None})
    assert job_summary("unknown", {"a": 1, "b": None}) == "a 1"
    line = job_summary("dispatch", {"sent": 33, "manual_tasks": 31, "written": 104})
    assert line.startswith("发送 2，转人工送达 31，仅写入文件 104，")
    assert job_summary("dispatch", {"sent": 3, "written": 0}).startswith("发送 3，仅写入文件 0，")
