"""Cell parsing: dates, amounts in 万元, free text and penalty types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipeline.sync.normalize import clean_text, parse_amount_wan, parse_date, split_penalty_types

DECIDED = dt.date(2022, 5, 9)


@pytest.mark.parametrize(
    "text",
    [
        "2022-05-09",
        "2022/5/9",
        "2022/05/09",
        "2022.5.9",
        "2022年5月9日",
        "2022年05月09日",
        "20220509",
        "2022-05-09 00:00:00",
        "2022-05-09T10:00:00",
        "2022-05-09T10:00:00.000+08:00",
        "2022/5/9 10:00",
        "2022年5月9日 10:00:00",
        " 2022-05-09 ",
        "２０２２年５月９日",
        "２０２２－０５－０９",
    ],
)
def test_the_date_forms_seen_in_exports_all_parse(text: str) -> None:
    assert parse_date(text) == DECIDED


def test_excel_date_and_datetime_cells_are_taken_as_they_are() -> None:
    assert parse_date(dt.datetime(2022, 5, 9, 10, 30)) == DECIDED
    assert parse_date(DECIDED) == DECIDED


def test_an_eight_digit_number_from_excel_is_a_compact_date() -> None:
    assert parse_date(20220509) == DECIDED


@pytest.mark.parametrize("empty", [None, "", "   ", "\u3000"])
def test_an_empty_date_cell_is_none(empty: object) -> None:
    assert parse_date(empty) is None


def test_month_thirteen_is_reported_as_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"^month 13 is out of range in '2022年13月1日'$"):
        parse_date("2022年13月1日")


def test_february_thirtieth_is_reported_as_a_bad_day() -> None:
    with pytest.raises(ValueError, match=r"^day 30 is out of range for 2022-02 in '2022-02-30'$"):
        parse_date("2022-02-30")


@pytest.mark.parametrize("text", ["昨天", "2022-05", "05/09/2022", "2022-05-09xyz", "1.5"])
def test_text_that_is_not_a_date_is_an_error_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_date(text)


def test_a_float_cell_is_not_a_date() -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_date(44690.0)


@pytest.mark.parametrize(
    ("value", "wan"),
    [
        ("0.2", "0.2"),
        ("1,000.5", "1000.5"),
        ("１，０００", "1000"),
        ("2000元", "0.2"),
        ("2,000 元", "0.2"),
        ("0.2万元", "0.2"),
        ("0.2万", "0.2"),
        (" 3 ", "3"),
        ("0", "0"),
        (5, "5"),
        (0.2, "0.2"),
        (Decimal("1.25"), "1.25"),
    ],
)
def test_amounts_are_read_in_wan_yuan(value: object, wan: str) -> None:
    assert parse_amount_wan(value) == Decimal(wan)


def test_a_float_amount_keeps_its_shown_digits_not_its_binary_error() -> None:
    assert str(parse_amount_wan(0.1)) == "0.1"


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_an_empty_amount_is_none(empty: object) -> None:
    assert parse_amount_wan(empty) is None


@pytest.mark.parametrize("value", ["-1", "-2000元", -0.5])
def test_a_negative_amount_is_an_error(value: object) -> None:
    with pytest.raises(ValueError, match="is negative"):
        parse_amount_wan(value)


@pytest.mark.parametrize("value", ["12.3.4元", "0.2美元", "abc", "NaN", "Infinity", True])
def test_a_non_numeric_amount_is_an_error(value: object) -> None:
    with pytest.raises(ValueError, match="is not an amount"):
        parse_amount_wan(value)


def test_clean_text_collapses_whitespace_runs_including_ideographic_spaces() -> None:
    assert (
        clean_text("  双鸭山智慧城市\u3000\u3000运营有限公司 \n") == "双鸭山智慧城市 运营有限公司"
    )


def test_clean_text_keeps_chinese_punctuation_in_names() -> None:
    assert clean_text("市场【2019】1号（补）") == "市场【2019】1号（补）"


def test_clean_text_of_none_is_empty_and_of_a_number_is_its_text() -> None:
    assert clean_text(None) == ""
    assert clean_text(42) == "42"


def test_penalty_types_split_on_every_separator_in_use() -> None:
    text = "警告;罚款；没收违法所得、责令停产停业,暂扣许可证，吊销执照/通报批评"
    assert split_penalty_types(text) == [
        "警告",
        "罚款",
        "没收违法所得",
        "责令停产停业",
        "暂扣许可证",
        "吊销执照",
        "通报批评",
    ]


def test_penalty_types_drop_blanks_and_repeats_keeping_first_order() -> None:
    assert split_penalty_types(" 罚款 ;; 警告 、罚款;") == ["罚款", "警告"]
    assert split_penalty_types("") == []


# --------------------------------------------------------------------------- issue 12: real exports

from pipeline.sync.normalize import (  # noqa: E402
    AMOUNT_EXAMPLES,
    DATE_EXAMPLES,
    DECISION_EXAMPLES,
    decision_key,
    decision_text,
    money_amounts,
    parse_confiscated_wan,
)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("二○一一年十一月十一日", dt.date(2011, 11, 11)),
        ("二〇〇八年三月二十七日", dt.date(2008, 3, 27)),
        ("二ОО八年三月三十一日", dt.date(2008, 3, 31)),  # Cyrillic О as the zero
        ("二OO八年十月十日", dt.date(2008, 10, 10)),  # Latin O
        ("２０１７年８月２８日", dt.date(2017, 8, 28)),
        ("2017年8月28日", dt.date(2017, 8, 28)),
        ("2017年 8月4日", dt.date(2017, 8, 4)),
        ("2017-6-2", dt.date(2017, 6, 2)),
        ("2017.8.28", dt.date(2017, 8, 28)),
        ("2019/02/14", dt.date(2019, 2, 14)),
        ("1568180781000", dt.date(2019, 9, 11)),
    ],
)
def test_the_date_forms_of_real_exports_parse(text: str, day: dt.date) -> None:
    assert parse_date(text) == day


def test_epoch_milliseconds_are_dates_in_china_standard_time() -> None:
    midnight = 1568131200000  # 2019-09-10T16:00Z = 2019-09-11 00:00 +08:00
    assert parse_date(midnight) == dt.date(2019, 9, 11)
    assert parse_date(float(midnight)) == dt.date(2019, 9, 11)  # ijson's numbers


@pytest.mark.parametrize("empty", ["null", "NULL", "-", "无", " 无 "])
def test_the_empty_markers_of_exports_are_no_date_and_no_amount(empty: str) -> None:
    assert parse_date(empty) is None
    assert parse_amount_wan(empty) is None


def test_a_month_first_date_is_refused_unless_the_source_says_how_it_writes_dates() -> None:
    with pytest.raises(ValueError, match="date_order: mdy"):
        parse_date("03/29/2018")
    assert parse_date("03/29/2018", "mdy") == dt.date(2018, 3, 29)
    assert parse_date("29/03/2018", "dmy") == dt.date(2018, 3, 29)
    with pytest.raises(ValueError, match="month 29 is out of range"):
        parse_date("29/03/2018", "mdy")


@pytest.mark.parametrize(
    ("text", "fine", "confiscated"),
    [
        ("罚款人民币二十万元", "20", None),
        ("罚款25万元人民币", "25", None),
        ("罚款2000元", "0.2", None),
        ("一万五千元", "1.5", "1.5"),
        ("罚款人民币贰仟元整", "0.2", None),
        ("没收违法所得13.07万元，罚款53.07万元", "53.07", "13.07"),
        ("没收违法所得人民币5000元并处罚款1万元", "1", "0.5"),
        ("责令改正，并处25万元罚款", "25", None),
        ("警告", None, None),
        ("取消高级管理人员任职资格3年", None, None),
    ],
)
def test_amounts_in_words_are_read_as_fine_and_confiscation(
    text: str, fine: str | None, confiscated: str | None
) -> None:
    assert parse_amount_wan(text) == (Decimal(fine) if fine else None)
    assert parse_confiscated_wan(text) == (Decimal(confiscated) if confiscated else None)


def test_an_amount_column_in_yuan_is_divided_into_wan() -> None:
    assert parse_amount_wan("2000", "yuan") == Decimal("0.2")
    assert parse_amount_wan(2000, "yuan") == Decimal("0.2")
    assert parse_amount_wan("2000元", "yuan") == Decimal("0.2")  # a unit in the cell wins


def test_money_amounts_names_what_each_amount_is() -> None:
    found = money_amounts("罚款1万元；没收违法所得2000元、没收非法财物3000元")
    assert (found.fine, found.confiscated, found.any) == (Decimal(1), Decimal("0.5"), True)
    assert not money_amounts("警告").any


def test_every_spelling_of_a_decision_number_is_one_key_and_keeps_its_text() -> None:
    assert {decision_key(d) for d in DECISION_EXAMPLES} == {"宝税罚〔2026〕3号"}
    assert decision_text(" 宝税罚【2026】第03号 ") == "宝税罚【2026】第03号"
    assert decision_key("宝税罚〔2026〕10号") != decision_key("宝税罚〔2026〕1号")
    assert decision_key("罚字2026-003") == "罚字2026-003"  # no 号: digits kept as written


def test_every_documented_example_parses_as_documented() -> None:
    for value, order, _note in DATE_EXAMPLES:
        parse_date(value, order)  # raises if a documented form is not read
    for value, field, unit, _note in AMOUNT_EXAMPLES:
        parser = parse_amount_wan if field == "fine_amount" else parse_confiscated_wan
        parser(value, unit)
