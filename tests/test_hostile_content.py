"""Hostile text in what the pipeline writes (issue 15, items 7 and 8), on SQLite and PostgreSQL.

- Formula injection: names, remarks and contacts that start like a formula (``=``, ``+``,
  ``-``, ``@``, after blanks, full-width ``＝``) reach the ledger export and the monthly
  report as text cells (with the quote prefix, so editing keeps them text), never as
  formulas: every cell of every written workbook is scanned, and LibreOffice itself
  computes nothing from them.
- Control characters: removed where data enters (sync of CSV, JSON and XLSX, contacts
  import, ``ledger set``, the Excel import), and, for what was stored before, where the
  workbooks and the 告知书 DOCX are written; a DOCX is parsed back before it is planned.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, update

from pipeline.db.engine import make_engine
from pipeline.db.models import Contact, Record, table_of
from pipeline.ledger import workbook
from pipeline.ledger.workbook import parse_text
from pipeline.notices.docx import GENERATED, docx_content, docx_text, render_docx
from pipeline.notices.outbox import outbox
from pipeline.office.text import formula_like, has_controls
from pipeline.office.xlsx import append, new_workbook, save_workbook
from pipeline.office.xml import InvalidDocument, check_docx, check_xlsx_written
from tests.helpers import TAX, CliRunner, Result, missing_tool, penalty, uscc, write_rows

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-27T09:00"
REPORTED = "2026-12-03T09:00"
CONTACT_HEADERS = ["统一社会信用代码", "联系人", "联系电话", "电子邮箱"]
NAMES = {
    1: "=1+1",
    2: ' =HYPERLINK("http://evil.example/x","点此查看")',
    3: "+1+1",
    4: "-1+1",
    5: "@SUM(1,1)",
    6: "＝1+1",
    7: "#N/A",
}
"""Entity n's name as the snapshot gives it (a formula, an error code)."""
REMARKS = "=cmd|' /C calc'!A0"
RESPONSIBLE = "+86 13800000099"
CONTACT = "@联系人"
EFFECT = "－1+1"  # full-width minus


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def _stored(text: str) -> str:
    """What the sync keeps of a name: blanks collapsed and trimmed."""
    return " ".join(text.split())


def _hostile_ledger(cli: CliRunner, folder: Path) -> None:
    rows = [penalty(n, CF_XDR_MC=name, CF_JDRQ="2026-05-06") for n, name in NAMES.items()]
    rows[0]["CF_FRDB"] = "=2+2"
    _ok(cli("sync", "--file", str(write_rows(folder / "p.csv", rows)), now=NOW))
    entry = {
        "名单名称": "@重大税收违法失信主体名单",
        "企业名称": "=3+3",
        "统一社会信用代码": uscc(21),
        "认定部门": TAX,
        "认定文书号": "宝税认〔2026〕21号",
        "列入日期": "2026-03-01",
        "列入原因": "虚开发票",
    }
    lists = write_rows(folder / "l.csv", [entry])
    _ok(cli("sync", "--file", str(lists), "--kind", "severe-list", now=NOW))
    _ok(cli("eligibility", now=NOW))
    contacts = [{"统一社会信用代码": uscc(1), "联系人": CONTACT, "联系电话": "13900000001"}]
    path = write_rows(folder / "c.csv", contacts, headers=CONTACT_HEADERS)
    _ok(cli("contacts", "import", str(path), now=NOW))
    _ok(
        cli(
            "ledger",
            "set",
            "宝税罚〔2026〕1号",
            f"--remarks={REMARKS}",
            f"--responsible={RESPONSIBLE}",
            now=NOW,
        )
    )
    _ok(cli("ledger", "set", "宝税认〔2026〕21号", f"--repair-effect={EFFECT}", now=NOW))


def _workbooks(cli: CliRunner, folder: Path) -> dict[str, Path]:
    """The ledger export (all departments) and the monthly report of the month."""
    export = folder / "ledger.xlsx"
    _ok(cli("ledger", "export", "--out", str(export), now=NOW))
    report = cli(
        "report",
        "monthly",
        "--month",
        "2026-11",
        "--out",
        str(folder / "report"),
        "--no-send",
        "--json",
        now=REPORTED,
    )
    _ok(report)
    return {"export": export, "report": Path(report.json()["files"]["xlsx"])}


def _cells(path: Path) -> list[Any]:
    book = openpyxl.load_workbook(path)  # normal mode: every cell, formulas as written
    return [cell for ws in book.worksheets for row in ws.iter_rows() for cell in row]


def _where(cell: Any) -> str:
    return f"{cell.parent.title}!{cell.coordinate}"


# --------------------------------------------------------------------------- formulas


def test_no_workbook_the_pipeline_writes_holds_a_formula(cli: CliRunner, tmp_path: Path) -> None:
    _hostile_ledger(cli, tmp_path)
    common = {_stored(n) for n in NAMES.values()} | {"=3+3", REMARKS, RESPONSIBLE, EFFECT}
    expected = {
        "export": common | {CONTACT + " 13900000001"},  # 企业负责人及电话: the contact
        "report": common | {"=2+2", "@重大税收违法失信主体名单"},  # the legal rep, 名单名称
    }
    for name, path in _workbooks(cli, tmp_path).items():
        cells = _cells(path)
        assert [_where(c) for c in cells if c.data_type == "f"] == [], name
        texts = {c.value: c for c in cells if isinstance(c.value, str)}
        for text in expected[name]:
            cell = texts.get(text)
            assert cell is not None, f"{name}: {text!r} is not written as it was"
            assert cell.data_type == "s", f"{name} {_where(cell)}: {text!r}"
            if formula_like(text):
                assert cell.quotePrefix, f"{name} {_where(cell)}: {text!r} lacks the quote prefix"
        with zipfile.ZipFile(path) as archive:  # the XML itself: no <f> anywhere
            sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
            assert not any(re.search(rb"<f[ >/]", archive.read(n)) for n in sheets), name


def test_an_exported_ledger_with_formula_like_text_reads_back_unchanged(
    cli: CliRunner, tmp_path: Path
) -> None:
    _hostile_ledger(cli, tmp_path)
    export = _workbooks(cli, tmp_path)["export"]
    result = _ok(cli("ledger", "import", str(export), "--json", now=REPORTED))
    assert result.json()["counts"]["changes"] == 0 and result.json()["conflicts"] == []
    shown = {e["decision_no"]: e for e in cli("ledger", "show", "--json", now=NOW).json_lines()}
    assert shown["宝税罚〔2026〕1号"]["remarks"] == REMARKS


def test_libreoffice_computes_nothing_from_the_exported_text(
    cli: CliRunner, tmp_path: Path, lo_profile: Path
) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        missing_tool("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc")
    _hostile_ledger(cli, tmp_path)
    export = _workbooks(cli, tmp_path)["export"]
    (tmp_path / "csv").mkdir()
    subprocess.run(
        [
            soffice,
            "--headless",
            "--norestore",
            f"-env:UserInstallation={lo_profile.as_uri()}",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76",
            "--outdir",
            str(tmp_path / "csv"),
            str(export),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    text = (tmp_path / "csv" / "ledger.csv").read_text(encoding="utf-8")  # the active 附件3
    for name in ("=1+1", "+1+1", "-1+1", "@SUM(1,1)", "＝1+1", "#N/A", REMARKS, RESPONSIBLE):
        assert name in text, f"LibreOffice did not keep {name!r} as text"
    assert "HYPERLINK" in text


def test_the_writer_marks_every_formula_start_and_saves_nothing_with_a_formula(
    tmp_path: Path,
) -> None:
    starts = ["=A1", " =A1", "\t+A1", "-A1", "@A1", "＝A1", "＋A1", "－A1", "＠A1", "﹦A1"]
    for text in starts:
        assert formula_like(text), text
    for text in ("A=1", "已告知", "", "   ", "1-2", "(=)", "13900000001"):
        assert not formula_like(text), text
    for write_only in (False, True):
        book = new_workbook(write_only)
        ws = book.create_sheet("s")
        append(ws, [*starts, "#DIV/0!", "plain", 3, None, "a\x00b\x07c"])
        path = tmp_path / f"w{write_only}.xlsx"
        save_workbook(book, path)
        cells = [c for c in _cells(path) if c.value is not None]
        assert [c.data_type for c in cells if c.data_type == "f"] == []
        assert [c.value for c in cells] == [*starts, "#DIV/0!", "plain", 3, "abc"]
        assert all(c.quotePrefix for c in cells[: len(starts)])
        check_xlsx_written(path)
    assert list(tmp_path.glob(".*partial")) == []


def test_a_workbook_with_a_formula_or_bad_xml_is_not_saved(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active["A1"] = "=1+1"  # not through the writer: a formula
    with pytest.raises(InvalidDocument, match="holds a formula"):
        save_workbook(book, tmp_path / "f.xlsx")
    assert not (tmp_path / "f.xlsx").exists() and list(tmp_path.iterdir()) == []
    good = tmp_path / "good.xlsx"
    openpyxl.Workbook().save(good)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b"</worksheet>", b"") if "sheet1" in name else data)
    with pytest.raises(InvalidDocument, match="not well-formed"):
        check_xlsx_written(broken)


# --------------------------------------------------------------------------- control characters


def _records(db_url: str) -> dict[str, dict[str, Any]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(table_of(Record))).mappings()
            return {r["decision_no"]: dict(r) for r in rows}
    finally:
        engine.dispose()


def _contact_names(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(select(table_of(Contact).c.contact_name))]
    finally:
        engine.dispose()


def test_control_characters_are_removed_where_data_enters(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    csv_row = penalty(1, CF_XDR_MC="双鸭山\x01测试\x07一号有限公司", CF_FRDB="张\x00三")
    json_row = penalty(2, CF_XDR_MC="双鸭山\x02测试二号\x1b有限公司", CF_SY="事实\x0b\x0c描述")
    other_row = penalty(3, CF_XDR_MC="双鸭山\x03测试三号有限公司", CF_FRDB="李\x08四")
    _ok(cli("sync", "--file", str(write_rows(tmp_path / "p.csv", [csv_row])), now=NOW))
    document = {"data": [csv_row, json_row, other_row]}
    (tmp_path / "p.json").write_text(json.dumps(document), encoding="utf-8")
    _ok(cli("sync", "--file", str(tmp_path / "p.json"), now=NOW))
    contacts = [
        {"统一社会信用代码": uscc(3), "联系人": "王\x05经理", "联系电话": "1390000\x060001"}
    ]
    _ok(cli("contacts", "import", str(write_rows(tmp_path / "c.csv", contacts)), now=NOW))
    no = "宝税罚〔2026〕3号"
    _ok(cli("ledger", "set", no, "--remarks=已\x03电话告知", "--responsible=张三\x04", now=NOW))

    records = _records(db_url)
    assert records["宝税罚〔2026〕1号"]["entity_name"] == "双鸭山测试一号有限公司"
    assert records["宝税罚〔2026〕1号"]["legal_rep"] == "张三"
    assert records["宝税罚〔2026〕2号"]["entity_name"] == "双鸭山测试二号有限公司"
    assert records["宝税罚〔2026〕2号"]["facts"] == "事实 描述"
    assert records[no]["entity_name"] == "双鸭山测试三号有限公司"
    assert records[no]["legal_rep"] == "李四"
    assert (records[no]["remarks"], records[no]["responsible"]) == ("已电话告知", "张三")
    assert _contact_names(db_url) == ["王经理"]

    # the Excel import: a cell's text is cleaned as it is read, and again as it is applied
    # (openpyxl reads no control character from a cell today; XML cannot hold one)
    assert parse_text(" 已上门\x07送达\x00 ") == "已上门送达"
    export = tmp_path / "ledger.xlsx"
    _ok(cli("ledger", "export", "--out", str(export), now=NOW))
    book = openpyxl.load_workbook(export)
    ws = book["附件3 行政处罚"]
    column = next(c.column for c in ws[2] if c.value == "备注")
    row = next(r for r in range(3, ws.max_row + 1) if ws.cell(r, 4).value == no)
    ws.cell(row, column).value = "已上门送达"
    book.save(tmp_path / "edited.xlsx")
    with pytest.MonkeyPatch.context() as patch:  # as if the cell had held a control character
        patch.setattr(workbook, "parse_text", lambda value: _dirty(parse_text(value)))
        _ok(cli("ledger", "import", str(tmp_path / "edited.xlsx"), now=REPORTED))
    assert _records(db_url)[no]["remarks"] == "已上门送达"
    for record in _records(db_url).values():
        for key, value in record.items():
            assert not (isinstance(value, str) and has_controls(value)), (
                record["decision_no"],
                key,
            )


def _dirty(text: str | None) -> str | None:
    return text.replace("上门", "上\x07门") if text else text


def _store_raw(db_url: str, decision_no: str, **values: str) -> None:
    """Write straight into the ledger, as data stored before the boundary cleaned it."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            records = table_of(Record)
            conn.execute(
                update(records).where(records.c.decision_no == decision_no).values(**values)
            )
    finally:
        engine.dispose()


def test_workbooks_and_notices_are_valid_with_control_characters_stored_before(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    no = "宝税罚〔2026〕1号"
    _ok(cli("sync", "--file", str(write_rows(tmp_path / "p.csv", [penalty(1)])), now=NOW))
    contacts = [{"统一社会信用代码": uscc(1), "联系人": "王经理", "电子邮箱": "a@example.com"}]
    _ok(cli("contacts", "import", str(write_rows(tmp_path / "c.csv", contacts)), now=NOW))
    _ok(cli("eligibility", now=NOW))
    _store_raw(
        db_url,
        no,
        entity_name="双鸭山\x01测试\x07有限公司",
        remarks="已\x1b告知",
        legal_rep="张\x02三",
    )
    paths = _workbooks(cli, tmp_path)
    for name, path in paths.items():
        check_xlsx_written(path)
        texts = {c.value for c in _cells(path) if isinstance(c.value, str)}
        assert "双鸭山测试有限公司" in texts and "已告知" in texts, name

    _ok(cli("notices", "plan", now=NOW))
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(select(outbox).where(outbox.c.kind == "repair_notice"))
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    content = base64.b64decode(row["payload"]["docx"]["content"])
    check_docx(content, "planned")  # every part parses
    assert "双鸭山测试有限公司" in docx_text(content)


def _with_document(data: bytes, xml: bytes) -> bytes:
    """A copy of a DOCX whose word/document.xml is `xml` (an older, unchecked rendering)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, xml if info.filename in GENERATED else src.read(info))
    return out.getvalue()


def test_a_docx_planned_broken_before_is_rendered_again_not_sent_broken() -> None:
    good = render_docx("双鸭山测试有限公司", "正文。", "宝山区税务局", "2026年11月27日")
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        xml = zf.read("word/document.xml")
    broken = _with_document(good, xml.replace("双鸭山测试".encode(), "双鸭山\x01测试".encode()))
    with pytest.raises(InvalidDocument, match="not well-formed"):
        check_docx(broken, "old")
    spec = {
        "entity_name": "双鸭山\x01测试有限公司",
        "body": "正文。",
        "issuer": "宝山区税务局",
        "date": "2026年11月27日",
        "content": base64.b64encode(broken).decode("ascii"),
    }
    sent = docx_content(spec)
    check_docx(sent, "re-rendered")
    assert "双鸭山测试有限公司" in docx_text(sent)
    spec["content"] = base64.b64encode(good).decode("ascii")
    assert docx_content(spec) == good  # a valid planned DOCX is sent as planned


def test_every_workbook_is_written_through_the_one_writer() -> None:
    """Only `pipeline.office.xlsx` makes workbooks or cells; the rest of the package calls it."""
    offenders = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        if path.parent.name == "office":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("openpyxl"):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [node.attr] if node.value.id == "openpyxl" else []
            if {"Workbook", "WriteOnlyCell", "Cell"} & set(names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
