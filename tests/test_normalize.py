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
