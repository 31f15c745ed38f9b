"""The ledger lifecycle: automatic transitions, `ledger set` rules, audit, green channel."""

from __future__ import annotations

from pathlib import Path

import pytest
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
    return {
        e["decision_no"]: e
        for e in cli("ledger", "show", "--all", "--json", *args, now=now).json_lines()
    }


def _load(
    cli: CliRunner, tmp_path: Path, rows: list[dict[str, str]], name: str, now: str, *extra: str
) -> None:
    result = cli("sync", "--file", str(write_rows(tmp_path / name, rows)), *extra, now=now)
    assert result.code == 0, result.err
    assert cli("eligibility", now=now).code == 0


def _gone(
    cli: CliRunner,
    tmp_path: Path,
    first: str = "2026-11-27",
    then: str = "2026-11-28",
    **facts: str,
) -> dict[str, object]:
    """Penalty 1 (with `facts`) in a snapshot, then gone from the next one; its entry after."""
    rows = [penalty(1, **facts), *(penalty(i, CF_JDRQ="2026-05-06") for i in range(2, 11))]
    _load(cli, tmp_path, rows, "a.csv", first)
    _load(cli, tmp_path, rows[1:], "b.csv", then)
    return _show(cli, now=then)["宝税罚〔2026〕1号"]


def test_a_repairable_penalty_that_vanishes_is_to_confirm_not_repaired(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    entry = _gone(cli, tmp_path, CF_JDRQ="2026-05-06")  # repairable from 2026-08-07
    assert (entry["progress"], entry["closed_on"], entry["close_reason"]) == (0, None, None)
    assert (entry["verify_reason"], entry["flags"]) == ("likely_repaired", ["to_confirm"])
    assert "宝税罚〔2026〕1号" in {
        e["decision_no"] for e in cli("ledger", "show", "--json", now="2026-11-28").json_lines()
    }
    audit = [(e.field, e.new_value, e.source) for e in _events(db_url) if e.record_id == 1]
    assert ("verify_reason", "likely_repaired", "sync") in audit
    assert not [e for e in audit if e[0] in ("progress", "closed_on")]


def test_a_penalty_that_could_not_have_been_repaired_yet_vanishes_unexplained(
    cli: CliRunner, tmp_path: Path
) -> None:
    entry = _gone(cli, tmp_path)  # decided 2026-09-28: in its minimum period until 2026-12-28
    assert (entry["status"], entry["verify_reason"], entry["closed_on"]) == (
        "in_min_period",
        "unexplained",
        None,
    )


def test_only_a_confirmation_closes_a_record_to_confirm(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _gone(cli, tmp_path, CF_JDRQ="2026-05-06")
    done = cli(
        "ledger",
        "set",
        "宝税罚〔2026〕1号",
        "--confirm",
        "repaired",
        "--actor",
        "王科员",
        "--json",
        now="2026-11-28",
    )
    assert done.code == 0, done.err
    entry = _show(cli, now="2026-11-28")["宝税罚〔2026〕1号"]
    assert (entry["progress"], entry["closed_on"], entry["close_reason"]) == (
        4,
        "2026-11-28",
        "repaired_early",
    )
    assert entry["flags"] == []
    closing = {
        (e.field, e.new_value) for e in _events(db_url) if e.source == "cli" and e.actor == "王科员"
    }
    assert {
        ("progress", "4"),
        ("close_reason", "repaired_early"),
        ("closed_on", "2026-11-28"),
    } <= closing


def test_a_revoked_decision_is_closed_as_revoked_and_other_needs_remarks(
    cli: CliRunner, tmp_path: Path
) -> None:
    _gone(cli, tmp_path)
    bare = cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "other", now="2026-11-28")
    assert bare.code == 2 and "--remarks" in bare.err
    assert (
        cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "revoked", now="2026-11-28").code
        == 0
    )
    entry = _show(cli, now="2026-11-28")["宝税罚〔2026〕1号"]
    assert (entry["progress"], entry["close_reason"], entry["closed_on"]) == (
        0,
        "revoked",
        "2026-11-28",
    )


def test_a_confirmation_is_refused_for_a_record_still_in_the_snapshot(
    cli: CliRunner, tmp_path: Path
) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06")], "a.csv", "2026-11-27")
    refused = cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "repaired")
    assert refused.code == 2 and "待核实" in refused.err and "nothing changed" in refused.err


def test_a_record_to_confirm_that_reappears_is_no_longer_to_confirm(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 11)]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    _load(cli, tmp_path, rows[1:], "b.csv", "2026-11-28")
    _load(cli, tmp_path, rows, "c.csv", "2026-11-29")
    entry = _show(cli, now="2026-11-29")["宝税罚〔2026〕1号"]
    assert (entry["verify_reason"], entry["flags"], entry["closed_on"]) == (None, [], None)


def test_a_penalty_that_vanishes_after_its_removal_date_is_closed_as_expired(
    cli: CliRunner, tmp_path: Path
) -> None:
    # 58号令, general: 2023-05-08 + 3 years → removed on 2026-05-09
    entry = _gone(cli, tmp_path, first="2026-05-08", then="2026-05-11", CF_JDRQ="2023-05-08")
    assert (entry["status"], entry["closed_on"], entry["close_reason"]) == (
        "expired",
        "2026-05-11",
        "expired",
    )


def test_a_penalty_still_shown_past_its_period_stays_open_and_is_flagged_after_the_grace(
    cli: CliRunner, tmp_path: Path
) -> None:
    # removal on 2026-05-09 (a make-up Saturday); 5 working days later is 2026-05-15
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2023-05-08")], "a.csv", "2026-05-14")
    entry = _show(cli, now="2026-05-14")["宝税罚〔2026〕1号"]
    assert (entry["status"], entry["closed_on"], entry["flags"]) == ("expired", None, [])
    assert cli("eligibility", now="2026-05-15").code == 0
    entry = _show(cli, now="2026-05-15")["宝税罚〔2026〕1号"]
    assert (entry["overdue_display_since"], entry["flags"], entry["closed_on"]) == (
        "2026-05-15",
        ["overdue_display"],
        None,
    )
    closed = cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "expired", now="2026-05-18")
    assert closed.code == 0, closed.err
    entry = _show(cli, now="2026-05-18")["宝税罚〔2026〕1号"]
    assert (entry["closed_on"], entry["close_reason"], entry["flags"]) == (
        "2026-05-09",
        "expired",
        [],
    )


def test_without_overdue_display_a_penalty_past_its_removal_date_is_closed_as_expired(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_LEDGER__OVERDUE_DISPLAY", "false")
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2022-05-09")], "a.csv", "2026-11-27")
    entry = _show(cli)["宝税罚〔2026〕1号"]
    assert (entry["status"], entry["closed_on"], entry["close_reason"]) == (
        "expired",
        "2023-05-10",
        "expired",
    )
    assert cli("ledger", "show", "--json").json_lines() == []  # closed entries are not open ones


def test_a_list_entry_that_vanishes_is_removed(cli: CliRunner, tmp_path: Path) -> None:
    row = {
        "名单名称": "安全生产严重失信主体名单",
        "企业名称": "双鸭山市测试9有限公司",
        "统一社会信用代码": uscc(9),
        "认定部门": EMERGENCY,
        "认定文书号": "宝应急认〔2026〕1号",
        "列入日期": "2026-03-01",
        "列入原因": "较大事故",
    }
    other = {**row, "认定文书号": "宝应急认〔2026〕2号", "统一社会信用代码": uscc(10)}
    rows = [row, other, *({**other, "认定文书号": f"宝应急认〔2026〕{i}号"} for i in range(3, 9))]
    _load(cli, tmp_path, rows, "l1.csv", "2026-11-27", "--kind", "severe-list")
    _load(cli, tmp_path, rows[1:], "l2.csv", "2026-11-28", "--kind", "severe-list")
    entry = _show(cli)["宝应急认〔2026〕1号"]
    assert (entry["progress"], entry["progress_name"], entry["close_reason"]) == (
        5,
        "已移出",
        "removed",
    )


def test_a_record_that_reappears_is_reopened_at_its_previous_progress(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 11)]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    assert (
        cli(
            "ledger",
            "set",
            "宝税罚〔2026〕1号",
            "--willing",
            "yes",
            "--progress",
            "2",
            now="2026-11-27",
        ).code
        == 0
    )
    _load(cli, tmp_path, rows[1:], "b.csv", "2026-11-28")
    _load(cli, tmp_path, rows, "c.csv", "2026-11-29")
    entry = _show(cli, now="2026-11-29")["宝税罚〔2026〕1号"]
    assert (entry["progress"], entry["closed_on"], entry["close_reason"]) == (2, None, None)


def test_ledger_set_records_each_change_as_an_audit_event(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _load(cli, tmp_path, [penalty(1, CF_JDRQ="2026-05-06")], "a.csv", "2026-11-27")
    result = cli(
        "ledger",
        "set",
        "宝税罚〔2026〕1号",
        "--willing",
        "yes",
        "--progress",
        "3",
        "--planned",
        "2026-12-31",
        "--remarks",
        "已在信用中国提交申请",
        "--actor",
        "张科长",
        "--json",
    )
    assert result.code == 0, result.err
    assert result.json()["changed"]["progress"] == {"old": 0, "new": 3}
    events = {e.field: e for e in _events(db_url) if e.source == "cli"}
    assert set(events) == {"willingness", "progress", "planned_on", "remarks"}
    assert (
        events["progress"].old_value,
        events["progress"].new_value,
        events["progress"].actor,
    ) == ("0", "3", "张科长")


def test_applying_before_the_repairable_date_is_refused_and_changes_nothing(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _load(
        cli, tmp_path, [penalty(1)], "a.csv", "2026-11-27"
    )  # decided 2026-09-28: repairable from 2026-12-29
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes", "--progress", "3")
    assert result.code == 2
    assert (
        "in_min_period" in result.err
        and "2026-12-29" in result.err
        and "nothing changed" in result.err
    )
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
    _gone(cli, tmp_path, CF_JDRQ="2026-05-06")
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--confirm", "data_gap").code == 0
    result = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes")
    assert result.code == 2 and "closed" in result.err


def test_an_unknown_or_ambiguous_decision_number_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    rows = [penalty(1), penalty(2, CF_WSH="宝税罚〔2026〕1号", CF_CFJG=EMERGENCY, CF_CFJGDM="")]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    missing = cli("ledger", "set", "不存在", "--willing", "yes")
    assert missing.code == 2 and "no record" in missing.err
    ambiguous = cli("ledger", "set", "宝税罚〔2026〕1号", "--willing", "yes")
    assert ambiguous.code == 2 and "--authority" in ambiguous.err
    assert (
        cli("ledger", "set", "宝税罚〔2026〕1号", "--authority", EMERGENCY, "--willing", "yes").code
        == 0
    )


def test_a_manual_delivery_confirmed_with_ledger_set_counts_as_told(
    cli: CliRunner, tmp_path: Path
) -> None:
    _load(cli, tmp_path, [penalty(1)], "a.csv", "2026-11-27")
    assert cli("ledger", "set", "宝税罚〔2026〕1号", "--progress", "1").code == 0
    entry = _show(cli)["宝税罚〔2026〕1号"]
    assert entry["notified_channel"] == "manual" and entry["receipt_confirmed_at"] is not None
    assert (entry["notified_by"], entry["notified_method"]) == ("cli", None)


def test_a_manual_delivery_records_who_delivered_it_and_how(cli: CliRunner, tmp_path: Path) -> None:
    _load(cli, tmp_path, [penalty(1)], "a.csv", "2026-11-27")
    done = cli(
        "ledger",
        "set",
        "宝税罚〔2026〕1号",
        "--progress",
        "1",
        "--method",
        "paper",
        "--actor",
        "李科员",
    )
    assert done.code == 0, done.err
    entry = _show(cli)["宝税罚〔2026〕1号"]
    assert (entry["notified_channel"], entry["notified_by"], entry["notified_method"]) == (
        "manual",
        "李科员",
        "paper",
    )


def test_green_channel_records_are_marked_listed_first_and_take_commitments(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1), penalty(2, CF_XDR_MC="双鸭山市康健医药有限公司")]
    _load(cli, tmp_path, rows, "a.csv", "2026-11-27")
    listed = cli("ledger", "show", "--json").json_lines()
    assert [e["decision_no"] for e in listed] == ["宝税罚〔2026〕2号", "宝税罚〔2026〕1号"]
    assert listed[0]["green_channel"] is True and "医药" in listed[0]["green_reason"]
    ok = cli("ledger", "set", "宝税罚〔2026〕2号", "--commitment", "2026-11-27", "--json")
    assert ok.code == 0 and ok.json()["changed"]["follow_up_on"]["new"] == "2026-12-27"
    refused = cli("ledger", "set", "宝税罚〔2026〕1号", "--commitment", "2026-11-27")
    assert refused.code == 2 and "green-channel" in refused.err
