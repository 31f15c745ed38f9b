"""`ledger export` / `ledger import`: the department workbook round trip (附件3/附件4, 对账).

Every test runs on SQLite and PostgreSQL through the in-process CLI. Edits are made with
openpyxl (which ignores sheet protection, like a determined user) and, where installed,
re-saved by LibreOffice headless.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import create_engine, select

from pipeline.cli import build_parser
from pipeline.db.engine import normalise_url
from pipeline.db.models import DepartmentReport, LedgerEvent, LedgerExport, table_of
from pipeline.errors import InputError
from pipeline.ledger.state import LIST_PROGRESS, PENALTY_PROGRESS
from pipeline.ledger.workbook import (
    LIST_LAYOUT,
    PENALTY_LAYOUT,
    parse_date_cell,
    parse_progress,
    parse_yes_no,
    read_workbook,
)
from tests.helpers import (
    EMERGENCY,
    EMERGENCY_USCC,
    TAX,
    CliRunner,
    DbCopy,
    Result,
    cli_at,
    missing_tool,
    penalty,
    uscc,
    write_rows,
)

P, L = PENALTY_LAYOUT.name, LIST_LAYOUT.name
PEN_HEADERS = [
    "序号",
    "企业名称",
    "统一社会信用代码",
    "行政处罚决定书文号",
    "行政处罚可修复时间",
    "企业修复意愿（是/否）",
    "计划完成修复时间",
    "工作进展（1已告知/2处罚整改/3已申请/4已完成）",
    "责任部门/处室",
    "责任人及电话",
    "企业负责人及电话",
    "备注",
]
LIST_HEADERS = [
    "序号",
    "企业名称",
    "统一社会信用代码",
    "处罚/判决决定书文号",
    "可修复时间",
    "企业修复意愿（是/否）",
    "计划完成修复时间",
    "工作进展（1 已告知/2 处罚决定整改/3 已申请/4 已修复/5 已移出）",
    "修复效果（执行金额等）",
    "责任处室",
    "责任人及电话",
    "企业负责人及电话",
    "备注",
]
NOW = "2026-11-27T09:00"
LATER = "2026-11-28T10:00"
IMPORT = "2026-12-03T15:00"


# --------------------------------------------------------------------------- fixtures


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def _build_ledger(url: str, folder: Path, config_dir: Path) -> None:
    """Tax bureau (SWJ): 4 repairable penalties, 1 in its minimum period, 2 list entries;
    the emergency bureau (YJJ): 1 penalty. Contacts for entity 1."""
    with cli_at(url, folder, config_dir) as cli:
        rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(1, 5)] + [penalty(5)]
        rows.append(
            penalty(
                6,
                CF_WSH="宝应急罚〔2026〕6号",
                CF_CFJG=EMERGENCY,
                CF_CFJGDM=EMERGENCY_USCC,
                CF_JDRQ="2026-05-06",
            )
        )
        _ok(cli("sync", "--file", str(write_rows(folder / "p.csv", rows)), now=NOW))
        entries = [
            {
                "名单名称": "重大税收违法失信主体名单",
                "企业名称": f"双鸭山市测试{n}有限公司",
                "统一社会信用代码": uscc(n),
                "认定部门": TAX,
                "认定文书号": f"宝税认〔2026〕{n}号",
                "列入日期": "2026-03-01",
                "列入原因": "虚开发票",
            }
            for n in (21, 22)
        ]
        kind = ("--kind", "severe-list")
        _ok(cli("sync", "--file", str(write_rows(folder / "l.csv", entries)), *kind, now=NOW))
        _ok(cli("eligibility", now=NOW))
        contacts = [{"统一社会信用代码": uscc(1), "联系人": "王经理", "联系电话": "13900000001"}]
        _ok(cli("contacts", "import", str(write_rows(folder / "c.csv", contacts)), now=NOW))


@pytest.fixture
def db_url(db_copy: DbCopy, config_dir: Path) -> str:
    """Every database here starts as the ledger of `_build_ledger`: a fresh copy of it, built
    once per backend and session (what `cli` runs on in this module)."""
    return db_copy("ledger-excel", lambda url, folder: _build_ledger(url, folder, config_dir))


@pytest.fixture
def ledger(cli: CliRunner) -> CliRunner:
    """The CLI on a fresh copy of the ledger of `_build_ledger`."""
    return cli


def _export(cli: CliRunner, path: Path, *args: str, now: str = NOW) -> dict[str, Any]:
    result = _ok(cli("ledger", "export", "--out", str(path), "--json", *args, now=now))
    out: dict[str, Any] = result.json()
    return out


def _import(cli: CliRunner, path: Path, *args: str, now: str = IMPORT) -> Result:
    return cli("ledger", "import", str(path), "--json", *args, now=now)


def _show(cli: CliRunner) -> dict[str, dict[str, Any]]:
    lines = cli("ledger", "show", "--all", "--json", now=IMPORT).json_lines()
    return {e["decision_no"]: e for e in lines}


def _query(db_url: str, query: Any) -> list[Any]:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def _import_events(db_url: str) -> list[Any]:
    e = table_of(LedgerEvent).c
    return _query(
        db_url,
        select(e.record_id, e.field, e.old_value, e.new_value, e.source, e.actor)
        .where(e.source == "import")
        .order_by(e.id),
    )


def _reports(db_url: str) -> list[Any]:
    r = table_of(DepartmentReport).c
    return _query(db_url, select(r.department_code, r.month, r.file, r.counts))


Edit = dict[str, dict[str, Any]]  # decision number → {header prefix → value}


def _columns(ws: Any) -> dict[str, int]:
    return {str(c.value): c.column for c in ws[2] if c.value is not None}


def _col(ws: Any, prefix: str) -> int:
    return next(i for h, i in _columns(ws).items() if h.startswith(prefix))


def _row_of(ws: Any, decision_no: str) -> int:
    col = _col(ws, "行政处罚决定书文号" if ws.title == P else "处罚/判决决定书文号")
    return next(r for r in range(3, ws.max_row + 1) if ws.cell(r, col).value == decision_no)


def edit(
    src: Path, dst: Path, sheets: dict[str, Edit], also: Callable[[Any], None] | None = None
) -> Path:
    """Copy the workbook with the given cells changed (and any other mutation)."""
    book = openpyxl.load_workbook(src)
    for sheet, rows in sheets.items():
        ws = book[sheet]
        for decision_no, cells in rows.items():
            row = _row_of(ws, decision_no)
            for prefix, value in cells.items():
                ws.cell(row, _col(ws, prefix)).value = value
    if also:
        also(book)
    book.save(dst)
    return dst


GOOD: dict[str, Edit] = {
    P: {
        "宝税罚〔2026〕1号": {
            "企业修复意愿": "是",
            "工作进展": "2处罚整改",
            "计划完成修复时间": dt.datetime(2026, 12, 31),
            "责任人及电话": "张三 13800000099",
            "备注": "已电话告知",
        },
        "宝税罚〔2026〕2号": {"工作进展": "1已告知", "企业修复意愿": "否"},
    },
    L: {
        "宝税认〔2026〕21号": {
            "企业修复意愿": "是",
            "工作进展": "2处罚决定整改",
            "修复效果": "已缴清罚款 2 万元",
        }
    },
}


# --------------------------------------------------------------------------- export


def test_export_writes_the_annex_layout_locked_with_dropdowns_and_dates(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    out = _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    assert (out["department"], out["penalties"], out["list_entries"]) == ("SWJ", 5, 2)
    book = openpyxl.load_workbook(tmp_path / "swj.xlsx")
    assert book.sheetnames == [P, L, "meta"]
    ws = book[P]
    assert [c.value for c in ws[2]][: len(PEN_HEADERS)] == PEN_HEADERS
    assert [c.value for c in book[L][2]][: len(LIST_HEADERS)] == LIST_HEADERS
    # the annex's 12 columns, then 核实结果 and 提示, then the hidden authority and record number
    assert "税务局" in ws["A1"].value and "A1:P1" in {str(m) for m in ws.merged_cells.ranges}
    assert ws.freeze_panes == "A3" and ws.protection.sheet
    assert ws.column_dimensions["B"].width == 30 and ws.column_dimensions["O"].hidden
    assert ws["M2"].value.startswith("核实结果") and ws["N2"].value.startswith("提示")
    row = _row_of(ws, "宝税罚〔2026〕1号")
    repairable = ws.cell(row, _col(ws, "行政处罚可修复时间"))
    assert isinstance(repairable.value, dt.datetime) and repairable.is_date
    assert ws.cell(row, _col(ws, "企业负责人及电话")).value == "王经理 13900000001"
    assert ws.cell(row, _col(ws, "责任部门/处室")).value == TAX
    assert ws.cell(row, _col(ws, "企业名称")).protection.locked
    assert not ws.cell(row, _col(ws, "工作进展")).protection.locked
    assert not ws.cell(row, _col(ws, "备注")).protection.locked
    lists = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert '"是,否"' in lists and '"1已告知,2处罚整改,3已申请,4已完成"' in lists
    assert '"已修复,决定已撤销,数据缺失,其他"' in lists
    list_dv = {dv.formula1 for dv in book[L].data_validations.dataValidation}
    assert '"1已告知,2处罚决定整改,3已申请,4已修复,5已移出"' in list_dv
    meta = {r[0]: r[1] for r in book["meta"].iter_rows(values_only=True)}
    assert book["meta"].sheet_state == "hidden" and meta["department"] == "SWJ"
    e = table_of(LedgerExport).c
    assert _query(db_url, select(e.token, e.department_code)) == [(meta["token"], "SWJ")]
    decisions = {ws.cell(r, 4).value for r in range(3, ws.max_row + 1)}
    assert "宝应急罚〔2026〕6号" not in decisions and len(decisions) == 5


# --------------------------------------------------------------------------- round trips


def _assert_good_applied(cli: CliRunner, db_url: str, result: Result) -> None:
    assert result.code == 0, result.err
    body = result.json()
    assert body["applied"] and body["errors"] == [] and body["conflicts"] == []
    assert body["counts"]["changes"] == 10 and body["counts"]["changed_rows"] == 3
    entries = _show(cli)
    one = entries["宝税罚〔2026〕1号"]
    assert (one["willingness"], one["progress"], one["planned_on"]) == ("yes", 2, "2026-12-31")
    assert (one["responsible"], one["remarks"]) == ("张三 13800000099", "已电话告知")
    assert (
        entries["宝税罚〔2026〕2号"]["progress"],
        entries["宝税罚〔2026〕2号"]["willingness"],
    ) == (1, "no")
    listed = entries["宝税认〔2026〕21号"]
    assert (listed["progress"], listed["repair_effect"]) == (2, "已缴清罚款 2 万元")
    events = _import_events(db_url)
    assert {(e.field, e.old_value, e.new_value) for e in events} >= {
        ("progress", "0", "2"),
        ("willingness", "unknown", "yes"),
    }
    assert all(e.actor.startswith("import:") for e in events)
    reports = _reports(db_url)
    assert [(r.department_code, r.month) for r in reports] == [("SWJ", "2026-12")]
    assert reports[0].counts["changes"] == 10


def test_round_trip_edited_with_openpyxl(ledger: CliRunner, tmp_path: Path, db_url: str) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    edited = edit(tmp_path / "swj.xlsx", tmp_path / "edited.xlsx", GOOD)
    result = _import(ledger, edited, "--department", "SWJ")
    _assert_good_applied(ledger, db_url, result)
    assert "宝税罚〔2026〕1号" in result.err and "→" in result.err  # the human diff
    again = _import(ledger, edited, now="2026-12-04")  # idempotent: nothing left to change
    assert (
        again.code == 0
        and again.json()["counts"]["changes"] == 0
        and again.json()["conflicts"] == []
    )


def test_round_trip_saved_by_libreoffice(
    ledger: CliRunner, tmp_path: Path, db_url: str, lo_profile: Path
) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        missing_tool("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc")
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    edited = edit(tmp_path / "swj.xlsx", tmp_path / "edited.xlsx", GOOD)
    (tmp_path / "lo").mkdir()
    subprocess.run(
        [
            soffice,
            "--headless",
            "--norestore",
            f"-env:UserInstallation={lo_profile.as_uri()}",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            str(tmp_path / "lo"),
            str(edited),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    saved = tmp_path / "lo" / "edited.xlsx"
    assert saved.exists() and saved.read_bytes() != edited.read_bytes()
    _assert_good_applied(ledger, db_url, _import(ledger, saved, "--department", "SWJ"))


def _lo_python() -> str | None:
    """A Python with LibreOffice's UNO bridge (Debian: python3-uno), or None."""
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if (
            python
            and subprocess.run([python, "-c", "import uno"], capture_output=True).returncode == 0
        ):
            return python
    return None


def test_round_trip_edited_in_libreoffice(
    ledger: CliRunner, tmp_path: Path, db_url: str, lo_profile: Path
) -> None:
    soffice, python = shutil.which("soffice") or shutil.which("libreoffice"), _lo_python()
    if soffice is None or python is None:
        missing_tool(
            "LibreOffice (soffice) with the Python UNO bridge is not installed: apt-get install libreoffice-calc python3-uno"
        )
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    typed = {
        sheet: {
            no: {
                k: v.date().isoformat() if isinstance(v, dt.datetime) else str(v)
                for k, v in cells.items()
            }
            for no, cells in rows.items()
        }
        for sheet, rows in GOOD.items()
    }
    (tmp_path / "edits.json").write_text(json.dumps(typed, ensure_ascii=False), encoding="utf-8")
    script = Path(__file__).with_name("lo_edit.py")
    subprocess.run(
        [
            python,
            str(script),
            soffice,
            str(lo_profile),
            str(tmp_path / "swj.xlsx"),
            str(tmp_path / "lo.xlsx"),
            str(tmp_path / "edits.json"),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    book = openpyxl.load_workbook(tmp_path / "lo.xlsx")
    ws = book[P]
    assert isinstance(
        ws.cell(_row_of(ws, "宝税罚〔2026〕1号"), _col(ws, "计划完成修复时间")).value, dt.datetime
    )
    assert (
        book["meta"].sheet_state == "hidden" and ws.protection.sheet
    )  # (a headless save drops the frozen pane)
    _assert_good_applied(
        ledger, db_url, _import(ledger, tmp_path / "lo.xlsx", "--department", "SWJ")
    )


def test_a_whole_ledger_export_round_trips_but_is_no_monthly_report(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "all.xlsx")
    edited = edit(
        tmp_path / "all.xlsx", tmp_path / "e.xlsx", {P: {"宝应急罚〔2026〕6号": {"备注": "已上门"}}}
    )
    result = _ok(_import(ledger, edited))
    assert _show(ledger)["宝应急罚〔2026〕6号"]["remarks"] == "已上门"
    assert _reports(db_url) == [] and "monthly report" in result.err


# --------------------------------------------------------------------------- dry run, report, conflicts


def test_dry_run_shows_the_diff_and_changes_nothing(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    edited = edit(tmp_path / "swj.xlsx", tmp_path / "edited.xlsx", GOOD)
    result = _import(ledger, edited, "--dry-run")
    assert result.code == 0, result.err
    body = result.json()
    assert body["dry_run"] and not body["applied"] and body["counts"]["changes"] == 10
    assert {"field": "progress", "old": "0", "new": "2"}.items() <= body["changes"][
        0
    ].items() or any(c["field"] == "progress" and c["new"] == "2" for c in body["changes"])
    assert _import_events(db_url) == [] and _reports(db_url) == []
    assert _show(ledger)["宝税罚〔2026〕1号"]["progress"] == 0


def test_an_applied_import_counts_as_the_monthly_report_even_without_changes(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    _ok(_import(ledger, tmp_path / "swj.xlsx", now="2026-12-15T10:00"))
    reports = _reports(db_url)
    assert [(r.department_code, r.month, r.counts["changes"]) for r in reports] == [
        ("SWJ", "2026-12", 0)
    ]
    assert reports[0].file.endswith("swj.xlsx")


def test_fields_the_pipeline_changed_after_the_export_are_conflicts_not_overwritten(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    _ok(
        ledger(
            "ledger",
            "set",
            "宝税罚〔2026〕1号",
            "--progress",
            "1",
            "--remarks",
            "局里备注",
            now=LATER,
        )
    )
    _ok(ledger("ledger", "set", "宝税罚〔2026〕3号", "--responsible", "李四", now=LATER))
    edited = edit(
        tmp_path / "swj.xlsx",
        tmp_path / "edited.xlsx",
        {
            P: {
                "宝税罚〔2026〕1号": {
                    "工作进展": "2处罚整改",
                    "备注": "部门备注",
                    "企业修复意愿": "是",
                },
                "宝税罚〔2026〕3号": {"备注": "未改负责人"},
            }
        },
    )
    result = _import(ledger, edited)
    assert result.code == 0, result.err
    body = result.json()
    conflicts = {(c["decision_no"], c["field"]): c for c in body["conflicts"]}
    assert set(conflicts) == {("宝税罚〔2026〕1号", "progress"), ("宝税罚〔2026〕1号", "remarks")}
    assert (
        conflicts[("宝税罚〔2026〕1号", "remarks")]["exported"],
        conflicts[("宝税罚〔2026〕1号", "remarks")]["file"],
        conflicts[("宝税罚〔2026〕1号", "remarks")]["current"],
    ) == (None, "部门备注", "局里备注")
    assert "对账" in result.err
    entries = _show(ledger)
    one, three = entries["宝税罚〔2026〕1号"], entries["宝税罚〔2026〕3号"]
    assert (one["progress"], one["remarks"], one["willingness"]) == (1, "局里备注", "yes")
    assert (three["responsible"], three["remarks"]) == (
        "李四",
        "未改负责人",
    )  # untouched cell: pipeline value kept


# --------------------------------------------------------------------------- bad input


def test_an_impossible_transition_rejects_the_file_unless_apply_valid(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    edits = {P: {**GOOD[P], "宝税罚〔2026〕5号": {"企业修复意愿": "是", "工作进展": "3已申请"}}}
    edited = edit(tmp_path / "swj.xlsx", tmp_path / "edited.xlsx", edits)
    refused = _import(ledger, edited)
    assert refused.code == 2
    error = refused.json()["errors"][0]
    assert (error["sheet"], error["row"], error["column"]) == (P, 7, PEN_HEADERS[7])
    assert "in_min_period" in error["message"]
    assert f"sheet {P}, row 7, column {PEN_HEADERS[7]}" in refused.err
    assert _import_events(db_url) == [] and _reports(db_url) == []
    partial = _import(ledger, edited, "--apply-valid")
    assert partial.code == 0, partial.err
    assert partial.json()["skipped_rows"] == [f"{P} row 7"] and partial.json()["applied"]
    entries = _show(ledger)
    assert (
        entries["宝税罚〔2026〕1号"]["progress"] == 2
        and entries["宝税罚〔2026〕5号"]["progress"] == 0
    )


def test_progress_cannot_go_back_through_a_file(ledger: CliRunner, tmp_path: Path) -> None:
    _ok(ledger("ledger", "set", "宝税罚〔2026〕1号", "--progress", "2", now=NOW))
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ", now=LATER)
    edited = edit(
        tmp_path / "swj.xlsx",
        tmp_path / "e.xlsx",
        {P: {"宝税罚〔2026〕1号": {"工作进展": "1已告知"}}},
    )
    result = _import(ledger, edited)
    assert result.code == 2 and "cannot go back" in result.err


def test_moved_columns_are_read_by_their_headers(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")

    def move(
        book: Any,
    ) -> None:  # swap 企业修复意愿 (F) and 备注 (L), and 工作进展 (H) with 企业名称 (B)
        for ws in (book[P], book[L]):
            for a, b in ((_col(ws, "企业修复意愿"), _col(ws, "备注")), (_col(ws, "工作进展"), 2)):
                for r in range(2, ws.max_row + 1):
                    x, y = ws.cell(r, a), ws.cell(r, b)
                    x.value, y.value = y.value, x.value

    moved = edit(tmp_path / "swj.xlsx", tmp_path / "moved.xlsx", GOOD, also=move)
    _assert_good_applied(ledger, db_url, _import(ledger, moved, "--department", "SWJ"))


def test_a_deleted_column_is_named_and_nothing_changes(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")

    def delete(book: Any) -> None:
        book[P].delete_cols(_col(book[P], "工作进展"))

    broken = edit(tmp_path / "swj.xlsx", tmp_path / "broken.xlsx", GOOD, also=delete)
    result = _import(ledger, broken, "--apply-valid")
    assert result.code == 2
    assert f"sheet {P}, row 2, column {PEN_HEADERS[7]}: the required column" in result.err
    assert _import_events(db_url) == []


def test_extra_sheets_are_ignored_with_a_warning(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")

    def add(book: Any) -> None:
        book.security.lockStructure = False
        book.create_sheet("汇总")["A1"] = "部门自己的统计"

    result = _import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "x.xlsx", GOOD, also=add))
    assert result.code == 0, result.err
    assert [w["sheet"] for w in result.json()["warnings"]] == ["汇总"]
    assert "extra sheet ignored" in result.err


def test_merged_cells_over_data_rows_are_errors_naming_the_range(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")

    def merge(book: Any) -> None:
        ws = book[P]
        letter = openpyxl.utils.get_column_letter(_col(ws, "备注"))
        ws.merge_cells(f"{letter}3:{letter}4")

    result = _import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "m.xlsx", GOOD, also=merge))
    assert result.code == 2
    assert {(e["sheet"], e["row"]) for e in result.json()["errors"]} == {(P, 3), (P, 4)}
    assert "merged cells L3:L4" in result.err
    assert _import_events(db_url) == []


def test_dates_typed_as_text_are_read_and_bad_ones_named(ledger: CliRunner, tmp_path: Path) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    texts = {
        P: {
            "宝税罚〔2026〕1号": {"计划完成修复时间": "2026年12月31日"},
            "宝税罚〔2026〕2号": {"计划完成修复时间": "2027/1/15"},
            "宝税罚〔2026〕3号": {"计划完成修复时间": "20270201"},
        }
    }
    _ok(_import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "t.xlsx", texts)))
    entries = _show(ledger)
    assert [entries[f"宝税罚〔2026〕{n}号"]["planned_on"] for n in (1, 2, 3)] == [
        "2026-12-31",
        "2027-01-15",
        "2027-02-01",
    ]
    _export(ledger, tmp_path / "swj2.xlsx", "--department", "SWJ", now=IMPORT)
    bad = edit(
        tmp_path / "swj2.xlsx",
        tmp_path / "b.xlsx",
        {P: {"宝税罚〔2026〕4号": {"计划完成修复时间": "下月底"}}},
    )
    result = _import(ledger, bad, now="2026-12-05")
    assert result.code == 2
    assert f"sheet {P}, row 6, column 计划完成修复时间: '下月底' is not a date" in result.err


@pytest.mark.parametrize("yes,no", [("Y", "N"), (1, 0), ("yes", "no"), ("是的", "否")])
def test_yes_no_written_in_other_ways_is_understood(
    ledger: CliRunner, tmp_path: Path, yes: object, no: object
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    cells = {
        P: {"宝税罚〔2026〕1号": {"企业修复意愿": yes}, "宝税罚〔2026〕2号": {"企业修复意愿": no}}
    }
    _ok(_import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "y.xlsx", cells)))
    entries = _show(ledger)
    assert (
        entries["宝税罚〔2026〕1号"]["willingness"],
        entries["宝税罚〔2026〕2号"]["willingness"],
    ) == ("yes", "no")


def test_a_yes_no_cell_that_is_neither_is_an_error(ledger: CliRunner, tmp_path: Path) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    cells = {P: {"宝税罚〔2026〕1号": {"企业修复意愿": "考虑中"}}}
    result = _import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "y.xlsx", cells))
    assert (
        result.code == 2
        and f"row 3, column {PEN_HEADERS[5]}: '考虑中' is not 是 or 否" in result.err
    )


def test_a_departments_file_imported_as_another_is_refused(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    edited = edit(tmp_path / "swj.xlsx", tmp_path / "e.xlsx", GOOD)
    result = _import(ledger, edited, "--department", "YJJ", "--apply-valid")
    assert result.code == 2 and "a file of department SWJ imported as YJJ" in result.err
    assert _import_events(db_url) == [] and _reports(db_url) == []


def test_a_row_of_another_department_pasted_in_is_refused(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    _export(ledger, tmp_path / "yjj.xlsx", "--department", "YJJ")
    foreign_id = openpyxl.load_workbook(tmp_path / "yjj.xlsx")[P]["P3"].value
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    cells = {
        P: {
            "宝税罚〔2026〕4号": {
                "行政处罚决定书文号": "宝应急罚〔2026〕6号",
                "记录编号": foreign_id,
                "备注": "x",
            }
        }
    }
    result = _import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "e.xlsx", cells))
    assert result.code == 2 and "belongs to department YJJ" in result.err
    assert _import_events(db_url) == []


def test_a_file_over_50_mb_is_refused_before_it_is_opened(
    ledger: CliRunner, tmp_path: Path
) -> None:
    big = tmp_path / "big.xlsx"
    with big.open("wb") as out:
        out.truncate(50 * 1024 * 1024 + 1)  # sparse: costs no disk
    result = _import(ledger, big)
    assert (
        result.code == 2
        and "over the 50 MB limit" in result.err
        and "nothing changed" in result.err
    )


def test_a_sheet_with_a_million_rows_is_refused_with_memory_bounded(
    ledger: CliRunner, tmp_path: Path
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")

    def grow(book: Any) -> None:
        book[P].cell(1_000_000, 12).value = "最后一行"

    huge = edit(tmp_path / "swj.xlsx", tmp_path / "huge.xlsx", {}, also=grow)
    result = _import(ledger, huge)
    assert result.code == 2 and "1,000,000 rows, over the limit of 200,000 rows" in result.err
    tracemalloc.start()
    with pytest.raises(InputError, match="over the limit of 3 rows"):
        read_workbook(
            tmp_path / "swj.xlsx", max_rows=3
        )  # the streaming count, when the dimension lies
    with pytest.raises(InputError, match="1,000,000 rows"):
        read_workbook(huge)
    assert tracemalloc.get_traced_memory()[1] < 20 * 1024 * 1024
    tracemalloc.stop()


def test_a_file_not_exported_by_the_pipeline_is_refused(
    ledger: CliRunner, tmp_path: Path, db_url: str
) -> None:
    book = openpyxl.Workbook()
    book.active.append(PEN_HEADERS)
    book.save(tmp_path / "own.xlsx")
    result = _import(ledger, tmp_path / "own.xlsx")
    assert result.code == 2 and "meta" in result.err
    (tmp_path / "text.xlsx").write_text("not a workbook")
    assert "not an .xlsx workbook" in _import(ledger, tmp_path / "text.xlsx").err
    assert _import_events(db_url) == [] and _reports(db_url) == []


# --------------------------------------------------------------------------- cell parsing


def test_ledger_export_and_import_are_commands_of_the_cli() -> None:
    parser = build_parser()
    export = parser.parse_args(["ledger", "export", "--out", "x.xlsx", "--department", "SWJ"])
    assert (export.ledger_command, export.out, export.department) == ("export", "x.xlsx", "SWJ")
    assert parser.parse_args(["ledger", "import", "x.xlsx"]).ledger_command == "import"


def test_cell_parsers() -> None:
    assert [parse_yes_no(v) for v in ("是", "Y", "yes", 1, True, "否", "n", 0, None, " ")] == [
        "yes"
    ] * 5 + ["no"] * 3 + ["unknown"] * 2
    assert [
        parse_progress(v, PENALTY_PROGRESS)
        for v in (2, 2.0, "2", "2处罚整改", "2 处罚整改", "处罚整改", None)
    ] == [2] * 6 + [0]
    assert parse_progress("5已移出", LIST_PROGRESS) == 5
    for bad in ("5", "2已完成", 2.5, "abc"):
        with pytest.raises(ValueError, match="not a progress code"):
            parse_progress(bad, PENALTY_PROGRESS)
    assert parse_date_cell(dt.datetime(2026, 12, 31, 0, 0)) == dt.date(2026, 12, 31)
    assert parse_date_cell(46387) == dt.date(2026, 12, 31)  # an Excel serial that lost its format
    assert parse_date_cell("2026.12.31") == dt.date(2026, 12, 31)
    with pytest.raises(ValueError):
        parse_date_cell("明年")


def test_a_record_to_confirm_is_closed_by_the_departments_verification_in_the_workbook(
    ledger: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(i, CF_JDRQ="2026-05-06") for i in range(2, 5)] + [penalty(5)]
    rows.append(
        penalty(
            6,
            CF_WSH="宝应急罚〔2026〕6号",
            CF_CFJG=EMERGENCY,
            CF_CFJGDM=EMERGENCY_USCC,
            CF_JDRQ="2026-05-06",
        )
    )
    _ok(
        ledger(
            "sync",
            "--file",
            str(write_rows(tmp_path / "p2.csv", rows)),
            "--force",
            now="2026-11-28T09:00",
        )
    )
    _ok(ledger("eligibility", now="2026-11-28T09:00"))
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ", now="2026-11-28T10:00")
    ws = openpyxl.load_workbook(tmp_path / "swj.xlsx")[P]
    row = _row_of(ws, "宝税罚〔2026〕1号")
    assert (
        "待核实" in ws.cell(row, _col(ws, "提示")).value
        and not ws.cell(row, _col(ws, "核实结果")).protection.locked
    )
    cells = {
        P: {"宝税罚〔2026〕1号": {"核实结果": "决定已撤销"}},
        L: {"宝税认〔2026〕21号": {"可修复时间": dt.datetime(2027, 3, 1)}},
    }
    result = _import(ledger, edit(tmp_path / "swj.xlsx", tmp_path / "e.xlsx", cells))
    assert result.code == 0, result.err
    entries = _show(ledger)
    one = entries["宝税罚〔2026〕1号"]
    assert (one["closed_on"], one["close_reason"], one["progress"]) == ("2026-11-28", "revoked", 0)
    assert (
        entries["宝税认〔2026〕21号"]["repairable_from"] == "2027-03-01"
    )  # a list with no periods in rules.yaml


def test_a_bad_verification_or_one_for_a_record_still_shown_is_refused(
    ledger: CliRunner, tmp_path: Path
) -> None:
    _export(ledger, tmp_path / "swj.xlsx", "--department", "SWJ")
    bad = _import(
        ledger,
        edit(
            tmp_path / "swj.xlsx",
            tmp_path / "a.xlsx",
            {P: {"宝税罚〔2026〕1号": {"核实结果": "没了"}}},
        ),
    )
    assert bad.code == 2 and "'没了' is not one of 已修复, 决定已撤销, 数据缺失, 其他" in bad.err
    shown = _import(
        ledger,
        edit(
            tmp_path / "swj.xlsx",
            tmp_path / "b.xlsx",
            {P: {"宝税罚〔2026〕1号": {"核实结果": "已修复"}}},
        ),
    )
    assert shown.code == 2 and "待核实" in shown.err
