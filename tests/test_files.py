"""The file adapter: encodings, formats, row numbers, broken rows and file errors."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
from pathlib import Path

import openpyxl
import pytest

from pipeline.errors import InputError
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.fields import build_mapping
from pipeline.sync.sources.files import detect_encoding, read_snapshot

HEADER = ["CF_WSH", "CF_XDR_MC", "CF_XDR_SHXYM", "CF_CFLB", "CF_NR_FK", "CF_JDRQ", "CF_CFJG"]
ROWS = [
    [
        "市场【2019】1号",
        "双鸭山智慧城市运营有限公司",
        "91230500MA1B3N1N2M",
        "罚款",
        "0.2",
        "2019-10-10",
        "双鸭山市公安局",
    ],
    [
        "杭市监罚〔2021〕12号",
        "杭州某某科技有限公司",
        "91330100716105852F",
        "警告;罚款",
        "1.5",
        "2021/3/5",
        "杭州市市场监督管理局",
    ],
]
CHINESE_HEADER = [
    "行政处罚决定书文号",
    "行政相对人名称",
    "统一社会信用代码",
    "处罚类别",
    "罚款金额（万元）",
    "处罚决定日期",
    "处罚机关",
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.write_text("\r\n".join(",".join(r) for r in rows) + "\r\n", encoding=encoding)
    return path


def read_all(path: Path, **kwargs: str) -> tuple[list[str], list[RawRow]]:
    with read_snapshot(path, **kwargs) as snapshot:
        return snapshot.headers, list(snapshot)


def test_utf8_csv_yields_rows_numbered_as_a_spreadsheet_shows_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER, *ROWS])
    headers, rows = read_all(path)
    assert headers == HEADER
    assert [(r.row_no, r.values, r.problem) for r in rows] == [
        (2, ROWS[0], None),
        (3, ROWS[1], None),
    ]


def test_utf8_with_bom_is_detected_and_the_bom_is_not_part_of_the_first_header(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER, *ROWS], "utf-8-sig")
    assert detect_encoding(path) == "utf-8-sig"
    assert read_all(path)[0][0] == "CF_WSH"


def test_a_bom_is_stripped_even_when_utf8_is_declared(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER, *ROWS], "utf-8-sig")
    headers, _ = read_all(path, encoding="utf-8")
    assert headers[0] == "CF_WSH"


def test_gb18030_export_with_chinese_headers_is_detected_and_mapped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [CHINESE_HEADER, *ROWS], "gb18030")
    assert detect_encoding(path) == "gb18030"
    headers, rows = read_all(path)
    mapping = build_mapping(headers, "penalties")
    fields, _ = mapping.apply(rows[0].values)
    assert fields["entity_name"] == "双鸭山智慧城市运营有限公司"
    assert fields["fine_amount"] == "0.2"
    assert mapping.missing_required() == []


def test_utf8_detection_survives_a_character_cut_at_the_sniff_boundary(tmp_path: Path) -> None:
    # 65535 ASCII bytes, then a 3-byte character straddling the 64 KiB boundary
    path = tmp_path / "p.csv"
    path.write_bytes(b"CF_WSH\n" + b"a" * (65536 - 8) + "\n双\n".encode())
    assert detect_encoding(path) == "utf-8"


def test_a_gbk_file_declared_utf8_is_an_input_error_naming_encoding_and_row(
    tmp_path: Path,
) -> None:
    ascii_rows = [[f"A{i}", "x", "", "", "", "2020-01-01", "y"] for i in range(2000)]
    path = write_csv(tmp_path / "gbk.csv", [HEADER, *ascii_rows, *ROWS], "gbk")
    with pytest.raises(InputError) as caught:
        read_all(path, encoding="utf-8")
    message = str(caught.value)
    assert "gbk.csv" in message
    assert "not valid utf-8 near row 2002" in message
    assert "try encoding: gb18030 or auto" in message


def test_a_utf8_file_that_turns_to_gbk_after_the_sniffed_part_fails_with_the_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.csv"
    body = "\n".join([",".join(HEADER), *("A,双鸭山,,,,2020-01-01,局" for _ in range(5000))])
    path.write_bytes(body.encode() + "\nB,双鸭山,,,,2020-01-01,局\n".encode("gbk"))
    with pytest.raises(InputError, match=r"mixed.csv: not valid utf-8 near row 5002") as caught:
        read_all(path)
    # the last row, but whole: an encoding error at that row, not a file cut off
    assert "cut off" not in str(caught.value)
    assert "that row is in another encoding" in str(caught.value)


def test_an_undecodable_last_row_without_a_newline_is_an_encoding_error_at_that_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.csv"
    body = "\n".join([",".join(HEADER), *("A,双鸭山,,,,2020-01-01,局" for _ in range(5000))])
    path.write_bytes(body.encode() + "\nB,双鸭山,,,,2020-01-01,局".encode("gbk"))
    with pytest.raises(InputError) as caught:
        read_all(path)
    assert "not valid utf-8 near row 5002; that row is in another encoding" in str(caught.value)


def test_an_unknown_declared_encoding_is_an_input_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER, *ROWS])
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        read_all(path, encoding="klingon")


def test_a_truncated_last_row_comes_through_with_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    text = "\n".join([",".join(HEADER), ",".join(ROWS[0]), ",".join(ROWS[1])])
    path.write_text(text[: text.rindex("2021/3/5")], encoding="utf-8")
    _, rows = read_all(path)
    assert rows[0].problem is None
    assert rows[1].row_no == 3
    assert rows[1].problem == "has 6 fields, the header has 7 (truncated row?)"
    assert len(rows[1].values) == 7 and rows[1].values[-1] is None


def test_a_file_cut_inside_a_chinese_character_says_so_with_the_row(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    body = "\n".join([",".join(HEADER), ",".join(ROWS[0]), ",".join(ROWS[1])]).encode()
    path.write_bytes(body[:-1])  # the last byte of 局 is missing
    with pytest.raises(
        InputError, match=r"cut.csv: not valid utf-8 near row 3; the file seems cut"
    ):
        read_all(path)


def test_a_row_with_extra_fields_is_flagged_but_a_trailing_comma_is_not(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER, [*ROWS[0], ""], [*ROWS[1], "多余"]])
    _, rows = read_all(path)
    assert (rows[0].problem, rows[0].values) == (None, ROWS[0])
    assert rows[1].problem == "has 8 fields, the header has 7"


def test_blank_lines_are_skipped_but_still_counted_in_row_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [[], HEADER, ROWS[0], [], [""] * 7, ROWS[1], []])
    headers, rows = read_all(path)
    assert headers == HEADER
    assert [r.row_no for r in rows] == [3, 6]


def test_a_quoted_field_may_hold_commas_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        'CF_WSH,CF_SY,CF_JDRQ\n"A1","未按规定,\n公示年报",2020-01-01\nA2,无,2020-01-02\n',
        encoding="utf-8",
    )
    _, rows = read_all(path)
    assert rows[0].values == ["A1", "未按规定,\n公示年报", "2020-01-01"]
    assert [r.row_no for r in rows] == [2, 3]


def test_a_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER])
    assert read_all(path) == (HEADER, [])


def test_2016_code_headers_pass_through_unchanged(tmp_path: Path) -> None:
    header = ["CF_WSH", "CF_CFLB1", "CF_CFLB2", "CF_XDR_MC", "CF_XDR_SHDM", "CF_JDRQ", "CF_XZJG"]
    path = write_csv(
        tmp_path / "p.csv", [header, ["A1", "警告", "罚款", "某公司", "", "20190101", "局"]]
    )
    headers, rows = read_all(path)
    fields, _ = build_mapping(headers, "penalties").apply(rows[0].values)
    assert fields["penalty_types"] == "警告;罚款"
    assert fields["authority"] == "局"


def test_a_header_missing_cf_jdrq_is_reported_as_missing_decision_date(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "CF_JDRQ"]
    path = write_csv(tmp_path / "p.csv", [header])
    headers, _ = read_all(path)
    assert build_mapping(headers, "penalties").missing_required() == ["decision_date"]


def test_xlsx_cells_keep_their_types_and_row_numbers(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CHINESE_HEADER)
    sheet.append(
        [
            "市场【2019】1号",
            "双鸭山智慧城市运营有限公司",
            "91230500MA1B3N1N2M",
            "罚款",
            0.2,
            dt.datetime(2019, 10, 10),
            "双鸭山市公安局",
        ]
    )
    sheet.append([])
    sheet.append(["A2", "某公司", None, "警告", None, dt.datetime(2020, 1, 2), "局"])
    book.save(tmp_path / "p.xlsx")
    headers, rows = read_all(tmp_path / "p.xlsx")
    assert headers == CHINESE_HEADER
    assert [r.row_no for r in rows] == [2, 4]
    assert rows[0].values[4] == 0.2
    assert rows[0].values[5] == dt.date(2019, 10, 10)  # calamine: a midnight date cell
    assert rows[1].values[2] is None and rows[1].problem is None


def test_xlsx_rows_with_empty_trailing_cells_are_padded_not_flagged(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["A1", "某公司"])
    sheet.append([*ROWS[0], "多余"])
    book.save(tmp_path / "p.xlsx")
    _, rows = read_all(tmp_path / "p.xlsx")
    assert (rows[0].values, rows[0].problem) == (["A1", "某公司", *[None] * 5], None)
    assert rows[1].problem == "has 8 fields, the header has 7"


def test_xlsx_header_with_trailing_empty_cells_is_trimmed(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["CF_WSH", "CF_XDR_MC", None, None])
    sheet.append(["A1", "某公司"])
    book.save(tmp_path / "p.xlsx")
    headers, rows = read_all(tmp_path / "p.xlsx")
    assert headers == ["CF_WSH", "CF_XDR_MC"]
    assert rows[0].values == ["A1", "某公司"]


def test_an_xlsx_under_another_suffix_reads_with_an_explicit_format(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.active.append(ROWS[0])
    book.save(tmp_path / "p.xlsx")
    (tmp_path / "p.xlsx").rename(tmp_path / "download.bin")
    assert read_all(tmp_path / "download.bin", format="xlsx")[1][0].values == ROWS[0]


def test_a_csv_file_named_xlsx_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.xlsx", [HEADER, *ROWS])
    with pytest.raises(InputError, match=r"export.xlsx is not a readable .xlsx workbook"):
        read_all(path)


def test_json_list_headers_are_the_union_of_keys_in_first_seen_order(tmp_path: Path) -> None:
    records = [{"CF_WSH": "A1", "CF_XDR_MC": "甲"}, {"CF_WSH": "A2", "CF_NR_FK": 0.2}, "oops"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    headers, rows = read_all(path)
    assert headers == ["CF_WSH", "CF_XDR_MC", "CF_NR_FK"]
    assert [r.values for r in rows[:2]] == [["A1", "甲", None], ["A2", None, 0.2]]
    assert [r.row_no for r in rows] == [1, 2, 3]
    assert rows[2].problem == "is a JSON str, not an object"


def test_json_object_records_are_found_by_key_or_as_the_first_list(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"total": 1, "data": [{"CF_WSH": "A1"}]}), encoding="utf-8")
    assert read_all(path)[1][0].values == ["A1"]
    with read_snapshot(path, records_key="data") as snapshot:
        assert [r.values for r in snapshot] == [["A1"]]
    with pytest.raises(InputError, match="no list under key 'rows' \\(keys: total, data\\)"):
        read_snapshot(path, records_key="rows")


def test_json_in_gb18030_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps([{"行政相对人名称": "双鸭山"}], ensure_ascii=False), encoding="gb18030"
    )
    assert read_all(path) == (["行政相对人名称"], [RawRow(1, ["双鸭山"])])


def test_invalid_json_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('[{"CF_WSH": "A1"', encoding="utf-8")
    with pytest.raises(InputError, match=r"p\.json: not valid JSON"):
        read_all(path)


def test_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"file .*nowhere.csv does not exist"):
        read_snapshot(tmp_path / "nowhere.csv")


def test_an_empty_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"p.csv is empty"):
        read_snapshot(tmp_path / "p.csv")


def test_a_file_of_blank_lines_has_no_header(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("\n\n,,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"p.csv has no header row"):
        read_snapshot(tmp_path / "p.csv")


def test_an_unknown_suffix_needs_an_explicit_format(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.dat", [HEADER, *ROWS])
    with pytest.raises(InputError, match=r"cannot tell the format from the suffix '.dat'"):
        read_snapshot(path)
    assert len(read_all(path, format="csv")[1]) == 2


def test_an_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [HEADER])
    with pytest.raises(InputError, match="unknown format 'xlsb'"):
        read_snapshot(path, format="xlsb")


def test_a_directory_is_not_a_snapshot(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a regular file"):
        read_snapshot(tmp_path)


def test_reading_a_large_csv_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        line = ",".join(ROWS[0]) + "\n"
        for _ in range(40_000):
            f.write(line)
    assert path.stat().st_size > 4_000_000
    tracemalloc.start()
    try:
        with read_snapshot(path) as snapshot:
            count = sum(1 for _ in snapshot)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 40_000
    assert peak < 1_000_000


# --------------------------------------------------------------------------- issue 12: real exports


def test_an_xlsx_within_the_sheet_limit_is_read_whole_and_a_larger_one_streamed(
    tmp_path: Path,
) -> None:
    from pipeline.office.archive import XlsxLimits

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for n in range(60):
        sheet.append([f"A{n}", "某公司", None, "罚款", 0.2, dt.datetime(2019, 10, 10), "局"])
    book.save(tmp_path / "p.xlsx")
    with read_snapshot(tmp_path / "p.xlsx") as snapshot:  # calamine: a midnight date cell
        assert next(snapshot).values[5] == dt.date(2019, 10, 10)
    small = XlsxLimits(max_sheet_cells=1000)  # 61 rows × 26 columns: over it
    with read_snapshot(tmp_path / "p.xlsx", limits=small) as snapshot:  # openpyxl, streamed
        rows = list(snapshot)
    assert rows[0].values[5] == dt.datetime(2019, 10, 10) and len(rows) == 60


def test_a_sparse_xlsx_is_measured_by_its_references_not_its_cell_count(tmp_path: Path) -> None:
    from pipeline.office.archive import XlsxLimits, check_xlsx

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.cell(row=50_000, column=200, value="far away")  # two rows, 10 million cells
    book.save(tmp_path / "sparse.xlsx")
    assert check_xlsx(tmp_path / "sparse.xlsx", XlsxLimits(), measure=True) == 50_000 * 200
    with read_snapshot(tmp_path / "sparse.xlsx") as snapshot:  # streamed, not held whole
        assert snapshot.headers[:2] == HEADER[:2]


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    text = "宝山区行政处罚信息公示表,,,\r\n,,,\r\n" + ",".join(HEADER) + "\r\n"
    text += "A1,某公司,,罚款,0.2,2026-9-28,局\r\n"
    path.write_text(text, encoding="gb18030")
    headers, rows = read_all(path)
    assert headers == HEADER
    assert [(r.row_no, r.values[0]) for r in rows] == [(4, "A1")]


def test_quoted_cells_with_line_breaks_crlf_and_a_trailing_empty_column_read_as_one_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.csv"
    text = ",".join(HEADER) + ",\r\n" + 'A1,"某公司\r\n（分公司）",,罚款,0.2,2026-09-28,局,\r\n'
    path.write_bytes(text.encode("utf-8"))
    headers, rows = read_all(path)
    assert headers == HEADER  # the trailing empty column is dropped
    (row,) = rows
    assert row.problem is None and row.values[1] == "某公司\r\n（分公司）"
