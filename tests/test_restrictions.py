"""修复受限: severe lists, the same violation again, repeat offenders — flags, never a status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.config.rules import RulesConfig
from pipeline.ledger.restrictions import Entry, restrictions_for
from tests.helpers import EMERGENCY, CliRunner, penalty, uscc, write_rows

D = dt.date
RULES = RulesConfig()


def _entry(
    id_: int,
    day: dt.date,
    kind: str = "penalty",
    violation: str | None = "未按期办理纳税申报",
    rule_set: str | None = "ndrc-2025-36",
    open_: bool = True,
) -> Entry:
    return Entry(
        id_,
        kind,
        f"文号{id_}",
        "某局",
        day,
        violation,
        rule_set,
        "某名单" if kind == "list" else None,
        open_,
    )


def _codes(record: Entry, *others: Entry, rules: RulesConfig = RULES) -> list[str]:
    return [r["code"] for r in restrictions_for(record, [record, *others], rules)]


def test_the_same_violation_within_the_window_on_either_side_is_flagged() -> None:
    record = _entry(1, D(2026, 6, 15), rule_set="ndrc-2023-58")
    assert _codes(record, _entry(2, D(2027, 6, 15), rule_set="ndrc-2025-36")) == ["same_violation"]
    assert _codes(record, _entry(2, D(2025, 6, 15), rule_set="ndrc-2023-58")) == ["same_violation"]
    assert (
        _codes(record, _entry(2, D(2027, 6, 16), rule_set="ndrc-2025-36")) == []
    )  # 12 months and a day
    assert _codes(record, _entry(2, D(2026, 7, 1), violation="其他违法行为")) == []
    assert (
        _codes(
            _entry(1, D(2026, 6, 15), violation=None, rule_set="ndrc-2023-58"),
            _entry(2, D(2026, 7, 1)),
        )
        == []
    )


def test_a_repeat_offender_with_unknown_years_is_flagged_for_a_person_never_decided() -> None:
    record = _entry(1, D(2026, 9, 28))
    found = restrictions_for(record, [record, _entry(2, D(2020, 1, 2), violation="另一类")], RULES)
    assert [r["code"] for r in found] == ["repeat_offender"]
    assert "年限未配置" in found[0]["reason"] and "文号2" in found[0]["reason"]
    assert (
        _codes(_entry(2, D(2020, 1, 2), violation="另一类", rule_set="ndrc-2019-527"), record) == []
    )  # 527: no bar


def test_a_repeat_offender_bar_with_known_years_looks_back_that_far_only() -> None:
    data = RULES.model_dump()
    data["rule_sets"]["ndrc-2025-36"]["repeat_offender_years"] = 2
    rules = RulesConfig.model_validate(data)
    record = _entry(1, D(2026, 9, 28))
    assert _codes(record, _entry(2, D(2024, 9, 28), violation="另一类"), rules=rules) == [
        "repeat_offender"
    ]
    assert _codes(record, _entry(2, D(2024, 9, 27), violation="另一类"), rules=rules) == []


def test_only_an_open_list_entry_restricts() -> None:
    record = _entry(1, D(2026, 9, 28), violation=None)
    assert _codes(record, _entry(2, D(2026, 3, 1), kind="list")) == ["severe_list"]
    assert _codes(record, _entry(2, D(2026, 3, 1), kind="list", open_=False)) == []


def _list_row(n: int, no: int, name: str = "安全生产严重失信主体名单") -> dict[str, str]:
    return {
        "名单名称": name,
        "企业名称": f"双鸭山市测试{n}有限公司",
        "统一社会信用代码": uscc(n),
        "认定部门": EMERGENCY,
        "认定文书号": f"宝应急认〔2026〕{no}号",
        "列入日期": "2026-03-01",
        "列入原因": "较大事故",
    }


def test_restrictions_reach_eligibility_and_the_ledger_and_follow_the_snapshot(
    cli: CliRunner, tmp_path: Path
) -> None:
    same = {"CF_XDR_SHXYM": uscc(1), "CF_XDR_MC": "双鸭山市测试1有限公司"}
    rows = [penalty(1, CF_JDRQ="2026-05-06"), penalty(2, CF_JDRQ="2026-09-28", **same), penalty(3)]
    assert cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows))).code == 0
    lists = [_list_row(1, 1), _list_row(5, 2, "某新名单"), *(_list_row(n, n) for n in range(6, 12))]
    assert (
        cli(
            "sync", "--file", str(write_rows(tmp_path / "l.csv", lists)), "--kind", "severe-list"
        ).code
        == 0
    )
    assert cli("eligibility").code == 0
    by_no = {line["decision_no"]: line for line in cli("eligibility", "--json").json_lines()}
    assert [r["code"] for r in by_no["宝税罚〔2026〕1号"]["restrictions"]] == [
        "severe_list",
        "same_violation",
    ]
    assert [r["code"] for r in by_no["宝税罚〔2026〕2号"]["restrictions"]] == [
        "severe_list",
        "same_violation",
        "repeat_offender",
    ]
    assert by_no["宝税罚〔2026〕3号"]["restrictions"] == []
    assert by_no["宝税罚〔2026〕1号"]["status"] == "repairable"  # a flag, not a status
    ledger = {e["decision_no"]: e for e in cli("ledger", "show", "--json").json_lines()}
    assert (
        "restricted" in ledger["宝税罚〔2026〕2号"]["flags"]
        and "restricted" not in ledger["宝税罚〔2026〕3号"]["flags"]
    )
    # 附件4 可修复时间 from rules.yaml lists; a list without a rule is left to the department
    assert (
        ledger["宝应急认〔2026〕1号"]["repairable_from"],
        ledger["宝应急认〔2026〕1号"]["removal_on"],
    ) == ("2027-03-02", "2029-03-02")
    assert ledger["宝应急认〔2026〕2号"]["repairable_from"] is None
    # the entity leaves the list: its penalties are no longer restricted by it
    assert (
        cli(
            "sync",
            "--file",
            str(write_rows(tmp_path / "l2.csv", lists[1:])),
            "--kind",
            "severe-list",
            "--force",
            now="2026-11-28",
        ).code
        == 0
    )
    assert cli("eligibility", now="2026-11-28").code == 0
    again = {
        line["decision_no"]: line
        for line in cli("eligibility", "--json", now="2026-11-28").json_lines()
    }
    assert [r["code"] for r in again["宝税罚〔2026〕1号"]["restrictions"]] == ["same_violation"]


def test_snapshot_mode_says_restrictions_are_not_computed(cli: CliRunner, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "snap.csv", [penalty(1)])
    line = cli("eligibility", "--snapshot", str(path), "--json").json_lines()[0]
    assert "restrictions" in line and line["restrictions"] is None
