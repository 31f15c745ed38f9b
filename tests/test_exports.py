"""Real-world exports (issue 12), through the CLI, on SQLite and PostgreSQL: a 2016-header
GBK file, a bank regulator's .xls table, the 双鸭山 platform's JSON, an .ods, re-exports
with other brackets, natural persons, other identity codes, year-last dates, 2,000 rows of
one fault, and `sources check` / `sync --dry-run`. Each fixture is built here, as the
platforms write them."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import xlwt
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pipeline.db.engine import normalise_url
from pipeline.db.models import QuarantinedRow, Record
from pipeline.sync.samplegen import org_code
from tests.helpers import TAX, TAX_USCC, CliRunner, penalty, uscc, write_rows

SAMR = "宝山区市场监督管理局"
PERSON = "张三丰"
"""A natural person's name: it must never be printed."""


def person_id(body: str = "23050619850312451") -> str:
    """An 18-character resident identity card number with its GB 11643 check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def _records(db_url: str) -> list[Record]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(Record).order_by(Record.id)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _quarantine(db_url: str) -> list[QuarantinedRow]:
    engine = create_engine(normalise_url(db_url))
    with Session(engine) as session:
        rows = list(session.execute(select(QuarantinedRow)).scalars())
        session.expunge_all()
    engine.dispose()
    return rows


def _sync(cli: CliRunner, path: Path, *args: str, now: str = "2026-11-27T09:00") -> dict:  # type: ignore[type-arg]
    result = cli("sync", "--file", str(path), *args, "--json", now=now)
    assert result.code == 0, result.err
    body: dict = result.json()  # type: ignore[type-arg]
    return body


# --------------------------------------------------------------------------- the 2016 header set

HEADERS_2016 = [
    "行政处罚决定书文号",
    "处罚名称",
    "处罚类别1",
    "处罚类别2",
    "处罚事由",
    "处罚依据",
    "行政相对人名称",
    "行政相对人代码_1（统一社会信用代码）",
    "行政相对人代码_2（组织机构代码）",
    "行政相对人代码_3（工商登记码）",
    "行政相对人代码_4（税务登记号）",
    "行政相对人代码_5（居民身份证号）",
    "法定代表人姓名",
    "处罚结果",
    "处罚生效期",
    "处罚截止期",
    "处罚机关",
    "当前状态",
    "地方编码",
    "数据更新时间戳",
    "备注",
    "",  # the export's trailing comma: an empty last column
]


def _row_2016(n: int, **cells: str) -> list[str]:
    row = dict.fromkeys(HEADERS_2016, "")
    row.update(
        {
            "行政处罚决定书文号": f"宝税罚〔2026〕{n}号",
            "处罚名称": "未按期办理纳税申报案",
            "处罚类别1": "罚款",
            "处罚事由": "经查，当事人\n未按期办理纳税申报。",  # a quoted cell across lines
            "处罚依据": "《中华人民共和国税收征收管理法》第六十二条",
            "行政相对人名称": f"双鸭山市测试{n}有限公司",
            "行政相对人代码_1（统一社会信用代码）": uscc(n),
            "法定代表人姓名": "王伟",
            "处罚结果": "罚款人民币二十万元",
            "处罚生效期": "二〇二六年九月二十八日",
            "处罚截止期": "二○二七年三月二十七日",
            "处罚机关": TAX,
            "当前状态": "正常",
            "地方编码": "230506",
            "数据更新时间戳": "2026-09-29 10:00:00",
        }
    )
    row.update(cells)
    return [row[h] for h in HEADERS_2016]


def _write_2016(path: Path, rows: list[list[str]]) -> Path:
    """GBK, CRLF, every cell quoted where the platform quotes it, a trailing empty column."""

    def line(cells: list[str]) -> str:
        return ",".join(f'"{c}"' if ("," in c or "\n" in c) else c for c in cells) + "\r\n"

    text = line(HEADERS_2016) + "".join(line(r) for r in rows)
    path.write_bytes(text.encode("gbk"))
    return path


def test_a_2016_export_in_gbk_with_chinese_numeral_dates_loads_as_the_current_one(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        _row_2016(1),
        _row_2016(
            2,
            **{
                "行政相对人名称": PERSON,
                "行政相对人代码_1（统一社会信用代码）": "",
                "行政相对人代码_5（居民身份证号）": person_id(),
                "法定代表人姓名": "",
            },
        ),
        _row_2016(
            3,
            **{
                "行政相对人名称": "宝山区老王烧烤店",
                "行政相对人代码_1（统一社会信用代码）": uscc(3).replace("91", "92", 1)[:17] + "0",
                "处罚结果": "一万五千元",
            },
        ),
        _row_2016(4, **{"行政相对人代码_1（统一社会信用代码）": "230506600012345"}),
    ]
    # the 个体工商户's code with its right check character
    from pipeline.domain.uscc import make_uscc

    rows[2][7] = make_uscc("92230506" + org_code("77777777"))
    body = _sync(cli, _write_2016(tmp_path / "2016.csv", rows))
    assert (body["rows_read"], body["added"], body["quarantined"]) == (4, 2, 0), body
    assert body["out_of_scope_reasons"] == {"natural_person": 1, "no_uscc": 1}
    assert body["identity_codes"] == {"reg_no": 1}
    first, shop = _records(db_url)
    assert first.decision_date == dt.date(2026, 9, 28)  # 处罚生效期: no 处罚决定日期 column
    assert first.valid_until == dt.date(2027, 3, 27)
    assert first.fine_amount == Decimal(20)  # from 处罚结果 (no amount column)
    assert first.facts == "经查，当事人 未按期办理纳税申报。"
    assert first.violation_type == "未按期办理纳税申报案"
    assert first.department_code == "SWJ"
    assert first.raw is not None and first.raw["地方编码"] == "230506"
    assert not any("居民身份证号" in key for key in first.raw)
    assert shop.uscc.startswith("92") and shop.fine_amount == Decimal("1.5")
    everything = json.dumps(body, ensure_ascii=False) + cli("quarantine", "--warnings").out
    assert PERSON not in everything and person_id() not in everything


# --------------------------------------------------------------------------- a bank regulator's .xls

BANK_HEADERS = [
    "序号",
    "行政处罚决定书文号",
    "当事人名称",
    "统一社会信用代码",
    "主要违法违规事实（案由）",
    "行政处罚依据",
    "行政处罚决定",
    "作出处罚决定的机关名称",
    "作出处罚决定的日期",
]


def _bank_xls(path: Path, rows: list[list[object]]) -> Path:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("行政处罚信息公开表")
    sheet.write(0, 0, "宝山区市场监督管理局行政处罚信息公开表")  # a title row above the header
    for c, header in enumerate(BANK_HEADERS):
        sheet.write(1, c, header)
    for r, row in enumerate(rows, 2):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))
    return path


def test_a_legacy_xls_table_reads_amounts_in_words_several_amounts_and_non_monetary_results(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    results = [
        ("罚款25万元人民币", "2017年 8月4日"),
        ("没收违法所得13.07万元，罚款53.07万元", "2017-6-2"),
        ("警告", "2017.8.28"),
        ("取消高级管理人员任职资格3年", "2019/02/14"),
    ]
    rows: list[list[object]] = [
        [
            n,
            f"宝市监罚〔2017〕{n}号",
            f"双鸭山市测试{n}有限公司",
            uscc(n),
            "违规经营",
            "某法第X条",
            text,
            SAMR,
            day,
        ]
        for n, (text, day) in enumerate(results, 1)
    ]
    path = _bank_xls(tmp_path / "bank.xls", rows)
    check = cli("sources", "check", "--file", str(path), "--json")
    assert check.code == 0, check.err  # the title row above the header is skipped
    assert check.json()["columns"][1]["field"] == "decision_no"
    body = _sync(cli, path)
    assert body["quarantined"] == 0, body
    records = {r.decision_no: r for r in _records(db_url)}
    got = [
        (
            records[f"宝市监罚〔2017〕{n}号"].fine_amount,
            records[f"宝市监罚〔2017〕{n}号"].confiscated_amount,
        )
        for n in range(1, 5)
    ]
    assert got == [
        (Decimal(25), None),
        (Decimal("53.07"), Decimal("13.07")),
        (None, None),
        (None, None),
    ]
    dates = [records[f"宝市监罚〔2017〕{n}号"].decision_date for n in range(1, 5)]
    assert dates == [
        dt.date(2017, 8, 4),
        dt.date(2017, 6, 2),
        dt.date(2017, 8, 28),
        dt.date(2019, 2, 14),
    ]


def test_an_xls_whose_cells_span_more_than_the_limit_is_refused_before_reading(
    cli: CliRunner, tmp_path: Path
) -> None:
    book = xlwt.Workbook()
    sheet = book.add_sheet("s")
    sheet.write(0, 0, "CF_WSH")
    sheet.write(65535, 255, "x")  # 6 kB on disk, 16.7 million cells for a reader holding it
    book.save(str(tmp_path / "sparse.xls"))
    result = cli("sync", "--file", str(tmp_path / "sparse.xls"))
    assert result.code == 2
    assert "sparse.xls" in result.err and "files.sheet_max_cells" in result.err
    assert "Traceback" not in result.err


# --------------------------------------------------------------------------- .ods


def _ods(path: Path, rows: list[list[str]], tail: str = "") -> Path:
    """An .ods as LibreOffice writes one: repeated empty rows and cells to the sheet's end."""

    def cell(value: str) -> str:
        if not value:
            return "<table:table-cell/>"
        return f'<table:table-cell office:value-type="string"><text:p>{escape(value)}</text:p></table:table-cell>'

    body = "".join(f"<table:table-row>{''.join(map(cell, r))}</table:table-row>" for r in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Sheet1">'
        f'<table:table-column table:number-columns-repeated="{len(rows[0])}"/>{body}{tail}'
        '<table:table-row table:number-rows-repeated="1048000">'
        '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return path


def test_an_ods_export_is_read(cli: CliRunner, tmp_path: Path, db_url: str) -> None:
    rows = [penalty(n) for n in (1, 2)]
    headers = list(rows[0])
    path = _ods(tmp_path / "p.ods", [headers, *([r[h] for h in headers] for r in rows)])
    body = _sync(cli, path)
    assert (body["added"], body["quarantined"]) == (2, 0), body
    assert [r.decision_no for r in _records(db_url)] == ["宝税罚〔2026〕1号", "宝税罚〔2026〕2号"]


def test_an_ods_whose_repeated_cells_span_more_than_the_limit_is_refused(
    cli: CliRunner, tmp_path: Path
) -> None:
    bomb = (
        '<table:table-row table:number-rows-repeated="100000">'
        '<table:table-cell office:value-type="string" table:number-columns-repeated="1000">'
        "<text:p>x</text:p></table:table-cell></table:table-row>"
    )
    path = _ods(tmp_path / "bomb.ods", [["CF_WSH"]], tail=bomb)
    assert path.stat().st_size < 5000
    result = cli("sync", "--file", str(path))
    assert result.code == 2 and "files.sheet_max_cells" in result.err, result.err


# --------------------------------------------------------------------------- the 双鸭山 platform's JSON


def test_the_shuangyashan_platform_json_loads_with_its_own_keys(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    decided = int(dt.datetime(2026, 9, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    record = {
        "RESOURCE_ID": "8a8a8b2e7c0f4a1b",
        "CF_WSH": "宝税罚〔2026〕7号",
        "COMP_NAME": "双鸭山市测试7有限公司",
        "CF_XDR_SHXYM": uscc(7),
        "CF_CFLB": "罚款",
        "CF_NR": "罚款人民币贰仟元整",
        "CF_NR_FK": 0.2,
        "CF_JDRQ": decided * 1000,
        "CF_YXQ": (decided + 365 * 86400) * 1000,
        "CF_GSJZQ": "null",
        "CF_CFJG": TAX,
        "CF_CFJGDM": TAX_USCC,
        "CF_SJLYDM": TAX_USCC,
        "CREATE_DEPT_NAME": "双鸭山市宝山区税务局法制科",
    }
    path = tmp_path / "sys.json"
    path.write_text(json.dumps({"code": 200, "msg": "成功", "data": [record]}, ensure_ascii=False))
    body = _sync(cli, path)
    assert (body["added"], body["quarantined"]) == (1, 0), body
    (rec,) = _records(db_url)
    assert rec.entity_name == "双鸭山市测试7有限公司"  # COMP_NAME: no CF_XDR_MC
    assert rec.decision_date == dt.date(2026, 9, 10)  # epoch milliseconds, +08:00
    assert rec.valid_until == dt.date(2027, 9, 10)
    assert rec.publish_until is None  # "null"
    assert rec.data_source == "双鸭山市宝山区税务局法制科"
    assert rec.data_source_uscc == TAX_USCC
    assert rec.raw == {"RESOURCE_ID": "8a8a8b2e7c0f4a1b"}


# --------------------------------------------------------------------------- one decision, many spellings


VARIANTS = [
    "宝税罚[2026]1号",
    "宝税罚﹝2026﹞2号",
    "宝税罚(2026)3号",
    "宝税罚（2026）4号",
    "宝税罚【2026】5号",
    "  宝税罚〔2026〕第06号",
]


def test_a_re_export_with_other_brackets_neither_vanishes_nor_adds_a_record(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    first = [penalty(n) for n in range(1, 7)]
    _sync(cli, write_rows(tmp_path / "a.csv", first))
    again = [penalty(n, CF_WSH=number) for n, number in enumerate(VARIANTS, 1)]
    body = _sync(cli, write_rows(tmp_path / "b.csv", again), now="2026-11-28T09:00")
    assert (body["added"], body["vanished"], body["updated"]) == (0, 0, 6), body
    records = _records(db_url)
    assert len(records) == 6
    assert [r.decision_key for r in records] == [f"宝税罚〔2026〕{n}号" for n in range(1, 7)]
    assert [r.decision_no for r in records] == [v.strip() for v in VARIANTS]  # as published
    shown = cli("eligibility", "--json").json_lines()
    assert sorted(line["decision_no"] for line in shown) == sorted(v.strip() for v in VARIANTS)
    # typed in yet another way, the number finds its record
    changed = cli("ledger", "set", "宝税罚〔2026〕6号", "--willing", "yes", "--json")
    assert changed.code == 0, changed.err
    assert changed.json()["decision_no"] == "宝税罚〔2026〕第06号"


def test_two_spellings_of_one_decision_in_one_file_are_a_duplicate(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(1), penalty(1, CF_WSH="宝税罚【2026】第01号")]
    body = _sync(cli, write_rows(tmp_path / "a.csv", rows))
    assert body["added"] == 1
    (issue,) = body["quarantine"]
    assert issue["row"] == 3 and issue["reason"].startswith("duplicate of row 2")


# --------------------------------------------------------------------------- who the record is about


def test_natural_persons_are_out_of_scope_by_reason_never_quarantined_nor_shown(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(1),
        penalty(2, CF_XDR_MC=PERSON, CF_XDR_LB="自然人", CF_XDR_SHXYM="", CF_JDRQ="无效日期"),
        penalty(3, CF_XDR_MC=PERSON, CF_XDR_LB="", CF_XDR_SHXYM=person_id()),
        {**penalty(4, CF_XDR_MC="", CF_XDR_SHXYM=""), "个人姓名": PERSON},
        penalty(5, CF_XDR_LB="个体工商户", CF_XDR_SHXYM=uscc(5).replace("91", "92", 1)),
    ]
    from pipeline.domain.uscc import make_uscc

    rows[4]["CF_XDR_SHXYM"] = make_uscc("92230506" + org_code("55555555"))
    path = write_rows(tmp_path / "p.csv", rows)
    result = cli("sync", "--file", str(path))
    assert result.code == 0, result.err
    assert "自然人 (natural_person) 3" in result.err
    body = _sync(cli, path, now="2026-11-28T09:00")
    assert body["quarantined"] == 0 and body["out_of_scope_reasons"] == {"natural_person": 3}
    assert {r.decision_no for r in _records(db_url)} == {"宝税罚〔2026〕1号", "宝税罚〔2026〕5号"}
    check = cli("sources", "check", "--file", str(path), "--rows", "9")
    dry = cli("sync", "--file", str(path), "--dry-run")
    shown = result.out + result.err + check.out + check.err + dry.out + dry.err
    shown += json.dumps(body, ensure_ascii=False) + cli("quarantine", "--warnings").out
    assert PERSON not in shown and person_id() not in shown
    assert "自然人 (natural_person)" in check.out


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("230506600012345", "reg_no"),
        ("MA1B3N1N-2", "org_code"),
        ("00000000000000000X", "placeholder"),
        ("000000000000000000", "placeholder"),  # passes both check characters
    ],
)
def test_other_identity_codes_are_reported_as_such_not_as_a_malformed_uscc(
    cli: CliRunner, tmp_path: Path, code: str, kind: str
) -> None:
    rows = [penalty(1, CF_XDR_SHXYM=code), penalty(2)]
    body = _sync(cli, write_rows(tmp_path / "p.csv", rows))
    assert body["quarantined"] == 0 and body["identity_codes"] == {kind: 1}, body
    assert body["out_of_scope_reasons"] == {"no_uscc": 1}


def test_a_uscc_split_by_a_space_is_joined_and_reported(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    code = uscc(1)
    body = _sync(
        cli, write_rows(tmp_path / "p.csv", [penalty(1, CF_XDR_SHXYM=f"{code[:8]} {code[8:]}")])
    )
    assert (body["added"], body["identity_codes"]) == (1, {"uscc_split": 1}), body
    assert _records(db_url)[0].uscc == code


# --------------------------------------------------------------------------- year-last dates


def _config_with_source(tmp_path: Path, config_dir: Path, path: Path, extra: str) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(config_dir, folder)
    settings = (folder / "settings.yaml").read_text(encoding="utf-8")
    assert "sources: []" in settings
    source = f"sources:\n  - name: bank\n    path: {path}\n{extra}"
    (folder / "settings.yaml").write_text(settings.replace("sources: []", source), encoding="utf-8")
    return folder


def test_month_first_dates_are_refused_unless_the_source_declares_date_order_mdy(
    cli: CliRunner, tmp_path: Path, config_dir: Path, db_url: str
) -> None:
    path = write_rows(tmp_path / "p.csv", [penalty(1, CF_JDRQ="03/29/2018"), penalty(2)])
    body = _sync(cli, path)
    (issue,) = body["quarantine"]
    assert issue["field"] == "decision_date" and "date_order: mdy" in issue["reason"]
    declared = CliRunner(_config_with_source(tmp_path, config_dir, path, "    date_order: mdy\n"))
    result = declared("sync", "--source", "bank", "--json")
    assert result.code == 0, result.err
    assert result.json()["quarantined"] == 0
    dates = {r.decision_date for r in _records(db_url)}
    assert dates == {dt.date(2018, 3, 29), dt.date(2026, 9, 28)}


# --------------------------------------------------------------------------- 2,000 rows, one fault


def test_two_thousand_rows_with_one_fault_are_one_line_with_a_count_and_examples(
    cli: CliRunner, tmp_path: Path
) -> None:
    rows = [penalty(n, CF_JDRQ=f"2026-13-{n % 28 + 1:02d}") for n in range(1, 2001)]
    rows += [penalty(3000, CF_XDR_SHXYM="91230506ABC"), penalty(3001)]
    result = cli("sync", "--file", str(write_rows(tmp_path / "p.csv", rows)))
    assert result.code == 0, result.err
    assert "decision_date: 2000 行 rows" in result.err
    assert result.err.count("\n") < 10  # one line per kind of fault, not 2,000
    summary = cli("quarantine", "--summary")
    lines = summary.out.splitlines()
    assert lines[0].startswith("同步 sync") and len(lines) == 3, summary.out
    assert "2000" in lines[1] and "decision_date" in lines[1] and "rows 2, 3, 4, 5, 6…" in lines[1]
    assert "'2026-13-02'" in lines[1]  # examples quote the values
    groups = cli("quarantine", "--summary", "--json").json_lines()
    assert [(g["field"], g["count"]) for g in groups] == [("decision_date", 2000), ("uscc", 1)]
    assert groups[0]["rows"] == [2, 3, 4, 5, 6] and len(groups[0]["examples"]) == 3
    assert len(cli("quarantine", "--json").json_lines()) == 2001  # the rows are all kept


# --------------------------------------------------------------------------- sources check, sync --dry-run


def test_sources_check_shows_each_column_s_field_the_unmapped_and_the_first_rows(
    cli: CliRunner, tmp_path: Path, config_dir: Path
) -> None:
    rows = [
        {
            "*行政处罚决定书文号": f"宝税罚〔2026〕{n}号",
            "行政相对人名称": f"双鸭山市测试{n}有限公司",
            "行政相对人代码_1（统一社会信用代码）": uscc(n),
            "罚款金额（元）": "2000",
            "处罚决定日期": "2026年9月28日",
            "处罚单位": TAX,
            "内部编号": f"N{n}",
        }
        for n in (1, 2)
    ]
    path = write_rows(tmp_path / "p.csv", rows)
    missing = cli("sources", "check", "--file", str(path), "--json")
    assert missing.code == 2  # no authority column: the sync would stop, and says why
    assert "authority (CF_CFJG / 处罚机关)" in missing.json()["missing"][0]
    cfg = _config_with_source(tmp_path, config_dir, path, "    field_map: {处罚单位: authority}\n")
    result = CliRunner(cfg)("sources", "check", "bank", "--json")
    assert result.code == 0, result.err
    report = result.json()
    how = {c["header"]: (c["field"], c["how"]) for c in report["columns"]}
    assert how["*行政处罚决定书文号"] == ("decision_no", "alias")
    assert how["行政相对人代码_1（统一社会信用代码）"] == ("uscc", "alias")
    assert how["处罚单位"] == ("authority", "field_map")
    assert how["内部编号"] == (None, "unmapped")
    assert report["unmapped"] == ["内部编号"]
    assert [c.get("unit") for c in report["columns"] if c["field"] == "fine_amount"] == ["元"]
    first = report["rows"][0]
    assert first["outcome"] == "loaded" and first["values"]["fine_amount"] == "0.2"
    text = CliRunner(cfg)("sources", "check", "bank")
    assert (
        "处罚单位" in text.out and "field_map 指定" in text.out and "第 2 行 row：导入" in text.out
    )


def test_sync_dry_run_shows_the_mapping_and_the_counts_and_keeps_nothing(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    path = write_rows(tmp_path / "p.csv", [penalty(n) for n in (1, 2, 3)])
    result = cli("sync", "--file", str(path), "--dry-run", "--json")
    assert result.code == 0, result.err
    body = result.json()
    assert body["dry_run"] is True and body["added"] == 3 and body["unmapped"] == []
    assert {c["header"] for c in body["columns"]} >= {"CF_WSH", "CF_JDRQ"}
    assert "dry run" in result.err
    assert _records(db_url) == [] and _quarantine(db_url) == []
    human = cli("sync", "--file", str(path), "--dry-run")
    assert "CF_WSH" in human.err and "新增 3" in human.err


# --------------------------------------------------------------------------- pure helpers


def test_a_reason_s_kind_leaves_out_the_values_it_quotes() -> None:
    from pipeline.sync.reasons import group_reasons, reason_kind

    assert reason_kind("'2019-13-01' is not a date (expected e.g. 2022-05-09)") == (
        "'…' is not a date (expected e.g. N-N-N)"
    )
    assert reason_kind("91230506ABC: has 11 characters, expected 18") == (
        "…: has N characters, expected N"
    )
    rows = [
        {"row": n, "field": "decision_date", "reason": f"'2019-13-{n:02d}' is not a date"}
        for n in range(2, 12)
    ]
    (group,) = group_reasons(rows)
    assert (group.count, group.rows, len(group.examples)) == (10, [2, 3, 4, 5, 6], 3)


def test_the_command_s_chinese_names_cover_the_library_s_codes() -> None:
    from pipeline.commands.data import IDENTITY_CODES, OUT_OF_SCOPE
    from pipeline.domain.routing import OUT_OF_SCOPE as REASONS
    from pipeline.domain.uscc import CODE_KINDS

    assert set(OUT_OF_SCOPE) == set(REASONS)
    assert set(IDENTITY_CODES) == set(CODE_KINDS)


def test_an_amount_already_given_in_the_other_column_is_not_taken_twice(
    cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    rows = [
        penalty(
            1, CF_CFLB="罚款、没收非法财物", CF_NR="罚款、没收非法财物人民币5000元", CF_NR_FK="0.5"
        ),
        penalty(2, CF_NR="没收违法所得1.2万元，罚款5万元", CF_NR_FK="5"),
    ]
    _sync(cli, write_rows(tmp_path / "p.csv", rows))
    got = [(r.fine_amount, r.confiscated_amount) for r in _records(db_url)]
    assert got == [(Decimal("0.5"), None), (Decimal(5), Decimal("1.2"))]
