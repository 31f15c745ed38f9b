"""The ledger lifecycle: automatic transitions, `ledger set` rules, audit, green channel."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pipeline.db.engine import normalise_url
from pipeline.db.models import LedgerEvent
from tests.helpers import EMERGENCY, CliRunner, penalty, uscc, write_rows


def _events(db_url: str) -> list[LedgerEvent]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(LedgerEvent).order_by(LedgerEvent.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _show(cli: CliRunner, *args: str, now: str = "2026-11-27") -> dict[str, dict[str, object]]:
    return {e["decision_no"]: e for e in cli("ledger", "show", "--all", "--json", *args, now=now).json_lines()}


def _load(cli: CliRunner, tmp_path: Path, rows: list[dict[str, str]], name: str, now: str, *extra: str) -> None:
    result = cli("sync", "--file", str(write_rows(tmp_path / name, rows)), *extra, now=now)
    assert result.code == 0, result.err
    assert cli("eligibility", now=now).code == 0


def test_a_penalty_that_vanishes_before_its_removal_date_is_repaired_early(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 11)]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    _load(cli, tmp_path, rows[1:], "b.csv", "2026-11-28")
    entry = _show(cli, now="2026-11-28")["宝税罚〔2026〕1号"]
    assert (entry["progress"], entry["closed_on"], entry["close_reason"]) == (4, "2026-11-28", "repaired_early")
    assert entry["progress_name"] == "已完成"
    audit = [(e.field, e.old_value, e.new_value, e.source) for e in _events(db_url) if e.field == "progress"]
    assert ("progress", "0", "4", "sync") in audit


def test_a_penalty_past_its_removal_date_is_closed_as_expired(cli: CliRunner, tmp_path: Path) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2022-05-09")], "a.csv", "2026-11-27")
    entry = _show(cli)["宝税罚〔2026〕1号"]
    assert (entry["status"], entry["closed_on"], entry["close_reason"]) == ("expired", "2023-05-10", "expired")
    assert cli("ledger", "show", "--json").json_lines() == []  # closed entries are not open ones


def test_a_list_entry_that_vanishes_is_removed(cli: CliRunner, tmp_path: Path) -> None:
    row = {"名单名称": "安全生产严重失信主体名单", "企业名称": "双鸭山市测试9有限公司", "统一社会信用代码": uscc(9),
           "认定部门": EMERGENCY, "认定文书号": "宝应急认〔2026〕1号", "列入日期": "2026-03-01", "列入原因": "较大事故"}  # fmt: skip
    other = {**row, "认定文书号": "宝应急认〔2026〕2号", "统一社会信用代码": uscc(10)}
    rows = [row, other, *({**other, "认定文书号": f"宝应急认〔2026〕{i}号"} for i in range(3, 9))]
    _load(cli, tmp_path, rows, "l1.csv", "2026-11-27", "--kind", "severe-list")
    _load(cli, tmp_path, rows[1:], "l2.csv", "2026-11-28", "--kind", "severe-list")
    entry = _show(cli)["宝应急认〔2026〕1号"]
    assert (entry["progress"], entry["progress_name"], entry["close_reason"]) == (5, "已移出", "removed")


def test_a_record_that_reappears_is_reopened_at_its_previous_progress(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 11)]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes", "--progress", "2", now="2026-11-27").code == 0
    _load(cli, tmp_path, rows[1:], "b.csv", "2026-11-28")
    _load(cli, tmp_path, rows, "c.csv", "2026-11-29")
    entry = _show(cli, now="2026-11-29")["宝税罚〔2026〕1号"]
    assert (entry["progress"], entry["closed_on"], entry["close_reason"]) == (2, None, None)


def test_ledger_set_records_each_change_as_an_audit_event(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06")], "a.csv", "2026-11-27")
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes", "--progress", "3", "--planned", "2026-12-31",
                 "--remarks", "已在信用中国提交申请", "--actor", "张科长", "--json")  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["changed"]["progress"] == {"old": 0, "new": 3}
    events = {e.field: e for e in _events(db_url) if e.source == "cli"}
    assert set(events) == {"willingness", "progress", "planned_on", "remarks"}
    assert (events["progress"].old_value, events["progress"].new_value, events["progress"].actor) == ("0", "3", "张科长")


def test_applying_before_the_repairable_date_is_refused_and_changes_nothing(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    _load(cli, tmp_path, [penalty(1)], "a.csv", "2026-11-27")  # decided 2026-09-28: repairable from 2026-12-29
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes", "--progress", "3")
    assert result.code == 2
    assert "in_min_period" in result.err and "2026-12-29" in result.err and "nothing changed" in result.err
    assert [e for e in _events(db_url) if e.source == "cli"] == []


def test_progress_cannot_go_back_or_contradict_willingness(cli: CliRunner, tmp_path: Path) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06")], "a.csv", "2026-11-27")
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "2").code == 0
    back = cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "1")
    assert back.code == 2 and "cannot go back" in back.err
    unwilling = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "no", "--progress", "3")
    assert unwilling.code == 2 and "willingness" in unwilling.err
    bad_code = cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "5")
    assert bad_code.code == 2 and "not a code of this ledger" in bad_code.err


def test_a_closed_entry_can_no_longer_change(cli: CliRunner, tmp_path: Path) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2022-05-09")], "a.csv", "2026-11-27")
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes")
    assert result.code == 2 and "closed" in result.err


def test_an_unknown_or_ambiguous_decision_number_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(1), penalty(2, CF_WSH="宝税罚〔2026〕1号", CF_CFJG=EMERGENCY, CF_CFJGDM="")]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    missing = cli("ledger", "set", "不存在", "--willing", "yes")
    assert missing.code == 2 and "no record" in missing.err
    ambiguous = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes")
    assert ambiguous.code == 2 and "--authority" in ambiguous.err
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--authority", EMERGENCY, "--willing", "yes").code == 0


def test_a_manual_delivery_confirmed_with_ledger_set_counts_as_told(cli: CliRunner, tmp_path: Path) -> None:
    _load(cli, tmp_path, [penalty(1)], "a.csv", "2026-11-27")
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "1").code == 0
    entry = _show(cli)["宝税罚〔2026〕1号"]
    assert entry["notified_channel"] == "manual" and entry["receipt_confirmed_at"] is not None


def test_green_channel_records_are_marked_listed_first_and_take_commitments(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(1), penalty(2, CF_XDR_MC="双鸭山市康健医药有限公司")]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    listed = cli("ledger", "show", "--json").json_lines()
    assert [e["decision_no"] for e in listed] == ["宝税罚〔2026〕2号", "宝税罚〔2026〕1号"]
    assert listed[0]["green_channel"] is True and "医药" in listed[0]["green_reason"]
    ok = cli("ledger", "set", "宝税罚〔2026〕2号", "--commitment", "2026-11-27", "--json")
    assert ok.code == 0 and ok.json()["changed"]["follow_up_on"]["new"] == "2026-12-27"
    refused = cli("ledger", "set", "宝税罚〔2026〕1号", "--commitment", "2026-11-27")
    assert refused.code == 2 and "green-channel" in refused.err
