"""Snapshot sync: the ledger core's contract, on SQLite and PostgreSQL, through the CLI."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pipeline.db.engine import normalise_url
from pipeline.db.models import Base, QuarantinedRow, Record, RecordChange, SyncRun
from tests.helpers import EMERGENCY, EMERGENCY_USCC, CliRunner, penalty, uscc, write_rows

M = TypeVar("M", bound=Base)
CONTRACT_KEYS = {
    "rows_read",
    "added",
    "updated",
    "unchanged",
    "vanished",
    "out_of_scope",
    "quarantined",
    "warnings",
    "refused",
    "reason",
    "quarantine",
}


def _all(db_url: str, model: type[M]) -> list[M]:
    """Every row of a table, read through a separate engine (what another process sees)."""
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(model).order_by(model.id)).scalars())  # type: ignore[attr-defined]
        session.expunge_all()
    engine.dispose()
    return rows


def _records(db_url: str) -> list[Record]:
    return _all(db_url, Record)


def test_first_sync_adds_every_valid_in_scope_row(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    path = write_rows(tmp_path / "p.csv", [penalty(i) for i in range(1, 6)])
    result = cli("sync", "--file", str(path), "--kind", "penalties", "--json")
    assert result.code == 0, result.err
    body = result.json()
    assert set(body) >= CONTRACT_KEYS
    assert (body["rows_read"], body["added"], body["quarantined"], body["refused"]) == (
        5,
        5,
        0,
        False,
    )
    records = _records(db_url)
    assert [r.decision_no for r in records] == [f"宝税罚〔2026〕{i}号" for i in range(1, 6)]
    assert records[0].department_code == "SWJ"
    assert records[0].fine_amount == Decimal("0.2")
    assert records[0].decision_date == dt.date(2026, 9, 28)


def test_rerunning_the_same_snapshot_changes_nothing(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    path = write_rows(tmp_path / "p.csv", [penalty(i) for i in range(1, 6)])
    cli("sync", "--file", str(path), "--json")
    again = cli("sync", "--file", str(path), "--json").json()
    assert (again["added"], again["updated"], again["unchanged"], again["vanished"]) == (0, 0, 5, 0)
    assert len(_all(db_url, RecordChange)) == 5  # only the five "added" entries


def test_a_changed_row_is_updated_and_its_old_values_kept(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", [penalty(1), penalty(2)])))
    changed = [penalty(1, CF_NR_FK="0.5"), penalty(2)]
    body = cli("sync", "--file", str(write_rows(tmp_path / "b.csv", changed)), "--json").json()
    assert (body["updated"], body["unchanged"]) == (1, 1)
    history = [c for c in _all(db_url, RecordChange) if c.change == "updated"]
    assert len(history) == 1 and history[0].old_values is not None
    assert list(history[0].old_values) == ["fine_amount"]
    assert Decimal(history[0].old_values["fine_amount"]) == Decimal("0.2")
    assert _records(db_url)[0].fine_amount == Decimal("0.5")


def test_a_vanished_record_is_marked_not_deleted_and_can_reappear(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i) for i in range(1, 11)]
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)))
    body = cli(
        "sync", "--file", str(write_rows(tmp_path / "b.csv", rows[1:])), "--json", now="2026-11-28"
    ).json()
    assert (body["vanished"], body["unchanged"]) == (1, 9)
    first = _records(db_url)[0]
    assert first.vanished_on == dt.date(2026, 11, 28)
    back = cli(
        "sync", "--file", str(write_rows(tmp_path / "c.csv", rows)), "--json", now="2026-11-29"
    ).json()
    assert back["updated"] == 1
    assert _records(db_url)[0].vanished_on is None
    assert [c.change for c in _all(db_url, RecordChange) if c.record_id == first.id] == [
        "added",
        "vanished",
        "reappeared",
    ]


def test_an_export_that_shrank_to_ten_percent_is_refused_and_changes_nothing(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(i) for i in range(1, 51)]
    cli("sync", "--file", str(write_rows(tmp_path / "full.csv", rows)))
    shrunk = write_rows(tmp_path / "shrunk.csv", rows[:5])
    result = cli("sync", "--file", str(shrunk), "--json", now="2026-11-28")
    assert result.code == 1
    body = result.json()
    assert body["refused"] is True and body["vanished"] == 45
    assert "45 of 50" in body["reason"] and "--force" in body["reason"]
    assert all(r.vanished_on is None for r in _records(db_url))
    runs = _all(db_url, SyncRun)
    assert runs[-1].status == "refused"
    forced = cli("sync", "--file", str(shrunk), "--json", "--force", now="2026-11-28")
    assert forced.code == 0 and forced.json()["vanished"] == 45


def test_an_empty_snapshot_is_refused(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", [penalty(1)])))
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(penalty(1)) + "\n", encoding="utf-8")
    result = cli("sync", "--file", str(empty), "--json")
    assert result.code == 1
    assert result.json()["refused"] is True and "no valid in-scope rows" in result.json()["reason"]


def test_a_header_missing_a_required_column_loads_nothing_and_names_it(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [{k: v for k, v in penalty(1).items() if k != "CF_JDRQ"}]
    result = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json")
    assert result.code == 2
    assert "decision_date" in result.err and "CF_JDRQ" in result.err and "a.csv" in result.err
    assert result.out == ""
    assert _records(db_url) == []


def test_an_unreadable_file_exits_2_naming_it(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("sync", "--file", str(tmp_path / "missing.csv"), "--json")
    assert result.code == 2 and "missing.csv" in result.err


def test_a_wrong_declared_encoding_is_a_clear_error(
    cli: CliRunner, tmp_path: Path, config_dir: Path, monkeypatch, db_url: str
) -> None:  # type: ignore[no-untyped-def]
    path = write_rows(tmp_path / "gbk.csv", [penalty(i) for i in range(1, 4)], encoding="gb18030")
    settings = (
        (config_dir / "settings.yaml")
        .read_text(encoding="utf-8")
        .replace("sources: []", f"sources:\n  - name: gbk\n    path: {path}\n    encoding: utf-8")
    )
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
    (cfg / "departments.yaml").write_text(
        (config_dir / "departments.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = CliRunner(cfg)("sync", "--source", "gbk", "--json")
    assert result.code == 2
    assert "utf-8" in result.err and "gbk.csv" in result.err
    assert _records(db_url) == []


def test_gb18030_exports_are_detected(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    path = write_rows(tmp_path / "gbk.csv", [penalty(i) for i in range(1, 4)], encoding="gb18030")
    assert cli("sync", "--file", str(path), "--json").json()["added"] == 3
    assert _records(db_url)[0].entity_name == "双鸭山市测试1有限公司"


def test_duplicate_decision_numbers_keep_the_first_and_quarantine_the_rest(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(1), penalty(2), penalty(1, CF_NR_FK="9")]
    body = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json").json()
    assert (body["added"], body["quarantined"]) == (2, 1)
    assert body["quarantine"] == [
        {"row": 4, "field": "decision_no", "reason": body["quarantine"][0]["reason"]}
    ]
    assert "duplicate of row 2" in body["quarantine"][0]["reason"]
    assert _records(db_url)[0].fine_amount == Decimal("0.2")


def test_an_impossible_date_is_quarantined_with_row_and_field(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(1), penalty(2, CF_JDRQ="2022年13月1日")]
    result = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json")
    assert result.code == 0
    body = result.json()
    assert (body["added"], body["quarantined"]) == (1, 1)
    item = body["quarantine"][0]
    assert item["row"] == 3 and item["field"] == "decision_date" and "13" in item["reason"]
    stored = _all(db_url, QuarantinedRow)
    assert [(q.row_no, q.field, q.level) for q in stored] == [(3, "decision_date", "error")]
    listed = cli("quarantine", "--json").json_lines()
    assert listed[0]["row_no"] == 3 and listed[0]["field"] == "decision_date"


def test_dates_in_every_listed_format_are_read(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    forms = ["2022-05-09", "2022/5/9", "2022年5月9日", "20220509"]
    rows = [penalty(i, CF_JDRQ=f) for i, f in enumerate(forms, start=1)]
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)))
    assert {r.decision_date for r in _records(db_url)} == {dt.date(2022, 5, 9)}


def test_amounts_with_commas_or_a_yuan_suffix_are_read_in_wan_yuan(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(1, CF_NR_FK="1,000.5"),
        penalty(2, CF_NR_FK="2000元"),
        penalty(3, CF_NR_FK="abc"),
    ]
    body = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json").json()
    assert [r.fine_amount for r in _records(db_url)] == [Decimal("1000.5"), Decimal("0.2")]
    assert body["quarantine"][0]["field"] == "fine_amount" and body["quarantine"][0]["row"] == 4


def test_full_width_digits_and_spaces_in_codes_are_normalised(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    code = uscc(1)
    wide = (
        " ".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in code[:6]) + "\u3000" + code[6:]
    )
    rows = [penalty(1, CF_XDR_SHXYM=wide, CF_WSH="宝税罚〔２０２６〕 1号", CF_NR_FK="０.２")]
    body = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json").json()
    assert body["added"] == 1, body
    record = _records(db_url)[0]
    assert (record.uscc, record.decision_key, record.fine_amount) == (
        code,
        "宝税罚〔2026〕1号",
        Decimal("0.2"),
    )
    assert record.decision_no == "宝税罚〔２０２６〕 1号"  # as published, for display


def test_a_bad_check_character_is_a_warning_and_the_row_is_kept(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [penalty(1, CF_XDR_SHXYM="91230506M0001TGQXM"), penalty(2, CF_XDR_SHXYM="9123050612345")]
    body = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json").json()
    assert (body["added"], body["warnings"], body["quarantined"]) == (1, 1, 1)
    assert (
        body["quarantine"][0]["field"] == "uscc" and "characters" in body["quarantine"][0]["reason"]
    )
    assert _records(db_url)[0].uscc_warning


def test_a_truncated_file_quarantines_the_cut_row(cli: CliRunner, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "a.csv", [penalty(i) for i in range(1, 4)])
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\r\n").rfind(b",", 0, len(data) - 40)])
    body = cli("sync", "--file", str(path), "--json").json()
    assert body["added"] == 2 and body["quarantined"] == 1
    assert body["quarantine"][0]["row"] == 4


def test_out_of_scope_rows_are_counted_not_loaded(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(1),
        penalty(2, CF_XDR_SHXYM=uscc(2, area="230502")),
        penalty(3, CF_CFJG="哈尔滨市市场监督管理局", CF_CFJGDM=""),
    ]
    body = cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)), "--json").json()
    assert (body["added"], body["out_of_scope"]) == (1, 2)
    assert len(_records(db_url)) == 1


def test_an_authority_no_department_claims_goes_to_the_bureau_flagged(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(1, CF_CFJG="宝山区某某局", CF_CFJGDM=uscc(99).replace("91", "11", 1)),
        penalty(2, CF_CFJG=EMERGENCY, CF_CFJGDM=EMERGENCY_USCC),
    ]
    cli("sync", "--file", str(write_rows(tmp_path / "a.csv", rows)))
    unrouted, routed = _records(db_url)
    assert unrouted.department_code == "YSHJ" and "no configured department" in (
        unrouted.route_note or ""
    )
    assert routed.department_code == "YJJ" and routed.route_note is None


def test_chinese_headers_and_2016_codes_are_recognised(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    chinese = {
        "行政处罚决定书文号": "宝税罚〔2026〕7号",
        "行政相对人名称": "双鸭山市测试7有限公司",
        "统一社会信用代码": uscc(7),
        "处罚类别": "警告、罚款",
        "罚款金额（万元）": "0.3",
        "处罚决定日期": "2026年9月1日",
        "处罚机关": "国家税务总局双鸭山市宝山区税务局",
        "失信严重程度": "一般",
        "备用列": "x",
    }
    cli("sync", "--file", str(write_rows(tmp_path / "cn.csv", [chinese])))
    old = {
        "CF_WSH": "宝税罚〔2016〕1号",
        "CF_XDR_MC": "旧格式公司",
        "CF_XDR_SHDM": uscc(8),
        "CF_CFLB1": "警告",
        "CF_CFLB2": "罚款",
        "CF_XZJG": "国家税务总局双鸭山市宝山区税务局",
        "CF_JDRQ": "2016/8/1",
        "DFBM": "230506",
        "SJC": "2016-08-02",
    }
    body = cli(
        "sync",
        "--file",
        str(write_rows(tmp_path / "old.csv", [old])),
        "--kind",
        "penalties",
        "--force",
        "--json",
    ).json()
    assert body["added"] == 1, body
    new, legacy = _records(db_url)
    assert (new.penalty_types, new.fine_amount, new.severity_given, new.raw) == (
        "警告;罚款",
        Decimal("0.3"),
        "一般",
        {"备用列": "x"},
    )
    assert legacy.penalty_types == "警告;罚款" and legacy.raw == {
        "DFBM": "230506",
        "SJC": "2016-08-02",
    }


def test_severe_list_snapshots_load_as_list_entries(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    row = {
        "名单名称": "安全生产严重失信主体名单",
        "企业名称": "双鸭山市测试9有限公司",
        "统一社会信用代码": uscc(9),
        "认定部门": EMERGENCY,
        "认定文书号": "宝应急认〔2026〕1号",
        "列入日期": "2026-03-01",
        "列入原因": "较大事故",
    }
    body = cli(
        "sync",
        "--file",
        str(write_rows(tmp_path / "l.csv", [row])),
        "--kind",
        "severe-list",
        "--json",
    ).json()
    assert body["added"] == 1
    entry = _records(db_url)[0]
    assert (entry.kind, entry.list_name, entry.department_code) == (
        "list",
        "安全生产严重失信主体名单",
        "YJJ",
    )
