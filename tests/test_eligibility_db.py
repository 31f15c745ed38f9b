"""Eligibility through the database and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from tests.helpers import (
    EMERGENCY,
    RULE_CASES,
    TAX,
    CliRunner,
    boundary_days,
    penalty,
    uscc,
    write_rows,
)

CONTRACT = [
    "decision_no",
    "authority",
    "entity_name",
    "uscc",
    "severity",
    "severity_source",
    "rule_set",
    "period_start",
    "min_end",
    "max_end",
    "repairable_from",
    "removal_on",
    "publish_by",
    "status",
    "reason",
]


def _case_rows() -> list[dict[str, str]]:
    return [
        penalty(i, CF_WSH=f"表测〔{i}〕号", CF_JDRQ=decision.isoformat(), 失信严重程度=given)
        for i, (_name, decision, given, *_rest) in enumerate(RULE_CASES, start=1)
    ]


def test_every_rule_set_severity_and_boundary_is_stored_per_day(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = _case_rows()
    sync = cli(
        "sync", "--file", str(write_rows(tmp_path / "cases.csv", rows)), "--json", now="2022-05-09"
    )
    assert sync.code == 0, sync.err
    expected: dict[dt.date, dict[str, str]] = defaultdict(dict)
    for i, (_name, decision, _given, _rs, _sev, min_end, max_end) in enumerate(RULE_CASES, start=1):
        for day, status in boundary_days(decision, min_end, max_end):
            expected[day][f"表测〔{i}〕号"] = status
    for day, statuses in sorted(expected.items()):
        result = cli("eligibility", "--json", now=day.isoformat())
        assert result.code == 0, result.err
        got = {line["decision_no"]: line["status"] for line in result.json_lines()}
        for decision_no, status in statuses.items():
            assert got[decision_no] == status, (day, decision_no, got[decision_no])


def test_eligibility_json_has_the_contract_fields(cli: CliRunner, tmp_path: Path) -> None:
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", [penalty(1)])))
    line = cli("eligibility", "--json", now="2026-11-27").json_lines()[0]
    assert list(line)[: len(CONTRACT)] == CONTRACT
    assert (line["rule_set"], line["severity"], line["status"]) == (
        "ndrc-2025-36",
        "general",
        "in_min_period",
    )
    assert (line["min_end"], line["repairable_from"], line["removal_on"]) == (
        "2026-12-28",
        "2026-12-29",
        "2027-09-29",
    )
    assert line["publish_by"] == "2026-10-13"  # 7 working days over the National Day holiday


def test_a_decision_after_now_is_an_error_record_and_the_rest_still_evaluate(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1), penalty(2, CF_JDRQ="2026-12-05")]
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), now="2026-12-10")
    result = cli("eligibility", "--json", now="2026-11-27")
    assert result.code == 0
    lines = {line["decision_no"]: line for line in result.json_lines()}
    assert lines["宝税罚〔2026〕1号"]["status"] == "in_min_period"
    bad = lines["宝税罚〔2026〕2号"]
    assert bad["status"] == "error" and "after the evaluation date" in bad["reason"]
    assert bad["min_end"] is None


def test_snapshot_mode_evaluates_a_file_without_the_database(
    empty_cli: CliRunner, tmp_path: Path, empty_db_url: str
) -> None:
    rows = [
        penalty(1),
        penalty(2, CF_XDR_SHXYM=uscc(2, "110105")),
        penalty(3, 失信严重程度="很严重"),
        penalty(4, CF_JDRQ="2031-03-03"),
        penalty(5, CF_GSJZQ="2020-01-01"),
        penalty(6, CF_JDRQ="2022年13月1日"),
    ]
    path = write_rows(tmp_path / "snap.csv", rows, encoding="gb18030")
    result = empty_cli("eligibility", "--snapshot", str(path), "--json", now="2031-06-01")
    assert result.code == 0, result.err
    lines = result.json_lines()
    assert len(lines) == 6
    assert (
        lines[0]["status"] == "expired" and lines[1]["status"] == "expired"
    )  # out of scope rows are answered too
    assert lines[2]["status"] == "error" and "很严重" in lines[2]["reason"]
    # no working-day data for 2031: the periods stand, only publish_by is unknown (said why)
    assert (
        lines[3]["status"] == "in_min_period"
        and lines[3]["publish_by"] is None
        and "2031" in lines[3]["reason"]
    )
    assert "warning" in lines[4]["reason"] and "2020-01-01" in lines[4]["reason"]
    assert lines[5]["status"] == "error" and "decision_date" in lines[5]["reason"]
    assert (
        not Path(empty_db_url.removeprefix("sqlite:///")).exists() or "postgresql" in empty_db_url
    )


def test_snapshot_mode_reads_the_bundled_sample(cli: CliRunner, config_dir: Path) -> None:
    sample = config_dir.parent / "sample" / "penalties.csv"
    lines = cli("eligibility", "--snapshot", str(sample), "--json").json_lines()
    real = next(line for line in lines if line["decision_no"] == "市场【2019】1号")
    assert (real["rule_set"], real["repairable_from"], real["removal_on"], real["status"]) == (
        "ndrc-2019-527",
        "2020-01-11",
        "2020-10-11",
        "expired",
    )
    # every row is answered; a natural person's only as such, with nothing of the person
    person = [line for line in lines if "natural person" in (line["reason"] or "")]
    assert len(person) == 1 and person[0]["entity_name"] is None
    assert all(line["status"] != "error" for line in lines if line not in person)


def test_an_authority_matching_two_departments_goes_to_the_first_and_is_flagged(
    cli: CliRunner, tmp_path: Path, config_dir: Path
) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.yaml").write_text(
        (config_dir / "settings.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    deps = (config_dir / "departments.yaml").read_text(encoding="utf-8")
    deps = deps.replace(
        "      - name: 宝山区应急管理局\n",
        f"      - name: 宝山区应急管理局\n      - name: {TAX}\n",
        1,
    )
    (cfg / "departments.yaml").write_text(deps, encoding="utf-8")
    run = CliRunner(cfg)
    run("sync", "--file", str(write_rows(tmp_path / "a.csv", [penalty(1, CF_CFJGDM="")])))
    line = run("ledger", "show", "--json").json_lines()[0]
    assert line["department_code"] == "SWJ"
    assert "matches departments SWJ, YJJ" in line["route_note"]
    assert EMERGENCY  # the second department named in the note
