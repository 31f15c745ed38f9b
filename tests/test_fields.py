"""Header → field mapping: standard codes (current and 2016), Chinese names, overrides."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.sync.sources.fields import build_mapping, describe_field, header_key

CURRENT_CODES = [
    "CF_WSH",
    "CF_XDR_MC",
    "CF_XDR_LB",
    "CF_XDR_SHXYM",
    "CF_FRDB",
    "CF_WFXW",
    "CF_SY",
    "CF_YJ",
    "CF_CFLB",
    "CF_NR",
    "CF_NR_FK",
    "CF_NR_WFFF",
    "CF_NR_ZKDX",
    "CF_JDRQ",
    "CF_YXQ",
    "CF_GSJZQ",
    "CF_CFJG",
    "CF_CFJGDM",
    "CF_SJLY",
    "CF_SJLYDM",
]
CODES_2016 = [
    "CF_AJMC",
    "CF_WSH",
    "CF_CFLB1",
    "CF_CFLB2",
    "CF_SY",
    "CF_YJ",
    "CF_XDR_MC",
    "CF_XDR_SHDM",
    "CF_FR",
    "CF_JG",
    "CF_JDRQ",
    "CF_XZJG",
    "DFBM",
    "SJC",
]
CHINESE = [
    "行政处罚决定书文号",
    "行政相对人名称",
    "行政相对人类别",
    "统一社会信用代码",
    "法定代表人",
    "违法行为类型",
    "违法事实",
    "处罚依据",
    "处罚类别",
    "处罚内容",
    "罚款金额（万元）",
    "没收违法所得、没收非法财物的金额(万元)",
    "暂扣或吊销证照名称及编号",
    "处罚决定日期",
    "处罚有效期",
    "公示截止期",
    "处罚机关",
    "处罚机关统一社会信用代码",
    "数据来源单位",
    "数据来源单位统一社会信用代码",
    "失信严重程度",
    "公示日期",
    "行业",
]
# the real 双鸭山 record from domain.md §4, as a current-code row
SHUANGYASHAN = [
    "市场【2019】1号",
    "双鸭山智慧城市运营有限公司",
    "法人及非法人组织",
    "91230500MA1B3N1N2M",
    "",
    "",
    "",
    "",
    "罚款",
    "罚款人民币贰仟元整",
    "0.2",
    "",
    "",
    "2019-10-10",
    "",
    "",
    "双鸭山市公安局",
    "11230500001755309F",
    "双鸭山市公安局",
    "11230500001755309F",
]


def test_every_current_standard_code_maps_to_a_field() -> None:
    mapping = build_mapping(CURRENT_CODES, "penalties")
    assert None not in mapping.fields
    assert mapping.missing_required() == []


def test_the_shuangyashan_row_maps_to_canonical_fields() -> None:
    fields, extras = build_mapping(CURRENT_CODES, "penalties").apply(SHUANGYASHAN)
    assert fields["decision_no"] == "市场【2019】1号"
    assert fields["uscc"] == "91230500MA1B3N1N2M"
    assert fields["fine_amount"] == "0.2"
    assert fields["authority_uscc"] == "11230500001755309F"
    assert extras == {}


def test_header_with_2016_codes_maps_and_keeps_case_name_and_area_code_raw() -> None:
    mapping = build_mapping(CODES_2016, "penalties")
    assert mapping.field_of("CF_XDR_SHDM") == "uscc"
    assert mapping.field_of("CF_XZJG") == "authority"
    assert mapping.field_of("CF_JG") == "penalty_content"
    assert mapping.field_of("CF_FR") == "legal_rep"
    assert [mapping.field_of(h) for h in ("CF_AJMC", "DFBM", "SJC")] == [None, None, None]
    assert mapping.missing_required() == []


def test_the_two_2016_penalty_type_columns_are_joined_with_semicolons() -> None:
    mapping = build_mapping(CODES_2016, "penalties")
    row = ["某案", "市场【2019】1号", "警告", "罚款", *[""] * 10]
    fields, extras = mapping.apply(row)
    assert fields["penalty_types"] == "警告;罚款"
    assert extras == {"CF_AJMC": "某案", "DFBM": "", "SJC": ""}


def test_an_empty_second_penalty_type_column_adds_no_separator() -> None:
    mapping = build_mapping(["CF_CFLB1", "CF_CFLB2"], "penalties")
    assert mapping.apply(["警告", ""])[0]["penalty_types"] == "警告"
    assert mapping.apply([None, None])[0]["penalty_types"] == ""


def test_header_with_chinese_names_and_units_in_brackets_maps_fully() -> None:
    mapping = build_mapping(CHINESE, "penalties")
    assert None not in mapping.fields
    assert mapping.field_of("罚款金额（万元）") == "fine_amount"
    assert mapping.field_of("没收违法所得、没收非法财物的金额(万元)") == "confiscated_amount"


def test_header_matching_ignores_width_whitespace_and_case() -> None:
    headers = [" cf_wsh ", "ＣＦ＿ＸＤＲ＿ＭＣ", "处罚 决定日期", "Cf_Cfjg\u3000"]
    mapping = build_mapping(headers, "penalties")
    assert list(mapping.fields) == ["decision_no", "entity_name", "decision_date", "authority"]


def test_header_key_strips_only_a_trailing_bracketed_unit() -> None:
    assert header_key("罚款金额（万元）") == "罚款金额"
    assert header_key("（万元）") == "(万元)"


def test_a_header_missing_cf_jdrq_lists_decision_date_as_missing() -> None:
    headers = [h for h in CURRENT_CODES if h != "CF_JDRQ"]
    mapping = build_mapping(headers, "penalties")
    assert mapping.missing_required() == ["decision_date"]
    assert mapping.describe_missing() == ["decision_date (CF_JDRQ / 处罚决定日期)"]


def test_required_fields_are_described_with_code_and_chinese_name() -> None:
    assert describe_field("decision_no", "penalties") == "decision_no (CF_WSH / 行政处罚决定书文号)"


def test_unmapped_columns_come_back_as_raw_extras_under_their_original_header() -> None:
    mapping = build_mapping(["CF_WSH", "备注", "内部编号"], "penalties")
    fields, extras = mapping.apply(["A1", "补录", 7])
    assert fields == {"decision_no": "A1"}
    assert extras == {"备注": "补录", "内部编号": 7}


def test_a_repeated_column_keeps_the_first_as_the_field_and_the_second_raw() -> None:
    mapping = build_mapping(["CF_CFJG", "处罚机关"], "penalties")
    fields, extras = mapping.apply(["双鸭山市公安局", "别的"])
    assert fields == {"authority": "双鸭山市公安局"}
    assert extras == {"处罚机关": "别的"}


def test_a_short_row_gives_none_for_the_missing_cells() -> None:
    fields, extras = build_mapping(["CF_WSH", "CF_XDR_MC", "备注"], "penalties").apply(["A1"])
    assert fields == {"decision_no": "A1", "entity_name": None}
    assert extras == {"备注": None}


def test_overrides_map_a_local_header_to_a_code_or_a_canonical_name() -> None:
    overrides = {"处罚单位": "CF_CFJG", "决定日期": "decision_date"}
    mapping = build_mapping(["CF_WSH", "CF_XDR_MC", "处罚单位", "决定日期"], "penalties", overrides)
    assert mapping.missing_required() == []
    assert mapping.field_of("处罚单位") == "authority"


def test_an_override_to_an_unknown_field_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'处罚单位' → 'CF_NOPE'"):
        build_mapping(["处罚单位"], "penalties", {"处罚单位": "CF_NOPE"})


def test_a_severe_list_snapshot_maps_its_chinese_headers() -> None:
    headers = [
        "名单名称",
        "市场主体名称",
        "统一社会信用代码",
        "列入机关",
        "处罚/判决决定书文号",
        "列入日期",
        "列入原因",
    ]
    mapping = build_mapping(headers, "severe-list")
    assert list(mapping.fields) == [
        "list_name",
        "entity_name",
        "uscc",
        "authority",
        "decision_no",
        "decision_date",
        "list_reason",
    ]
    assert mapping.missing_required() == []


@pytest.mark.parametrize(
    ("name", "authority", "doc", "date", "reason"),
    [
        ("企业名称", "认定部门", "认定文书号", "认定日期", "失信原因"),
        ("主体名称", "认定机关", "决定书文号", "列入日期", "列入原因"),
    ],
)
def test_severe_list_alternative_names_are_all_recognised(
    name: str, authority: str, doc: str, date: str, reason: str
) -> None:
    mapping = build_mapping([name, authority, doc, date, reason], "severe-list")
    assert list(mapping.fields) == [
        "entity_name",
        "authority",
        "decision_no",
        "decision_date",
        "list_reason",
    ]


def test_a_severe_list_without_list_name_is_complete_but_without_authority_is_not() -> None:
    mapping = build_mapping(["企业名称", "认定文书号", "认定日期"], "severe-list")
    assert mapping.missing_required() == ["authority"]
    assert mapping.describe_missing() == ["authority (认定部门 / 列入机关)"]


# --------------------------------------------------------------------------- issue 12: real exports


def test_decorated_headers_in_either_width_of_brackets_find_their_field() -> None:
    headers = [
        "*行政处罚决定书文号",
        "行政相对人名称",
        "行政相对人代码_1（统一社会信用代码）",
        "处罚金额（万元）",
        "处罚决定日期：",
        "处罚机关(名称)",
    ]
    mapping = build_mapping(headers, "penalties")
    assert mapping.fields == (
        "decision_no",
        "entity_name",
        "uscc",
        "fine_amount",
        "decision_date",
        "authority",
    )
    assert mapping.amount_units == {"fine_amount": "wan"}
    assert build_mapping(["罚款金额（元）"], "penalties").amount_units == {"fine_amount": "yuan"}


def test_the_2016_header_set_maps_and_its_effective_date_stands_in_for_the_decision_date() -> None:
    headers = ["行政处罚决定书文号", "处罚名称", "处罚事由", "处罚依据", "处罚结果"]
    headers += ["处罚生效期", "处罚截止期", "行政相对人代码_5（居民身份证号）", "地方编码"]
    mapping = build_mapping(headers, "penalties")
    assert mapping.fields == (
        "decision_no",
        "violation_type",
        "facts",
        "basis",
        "penalty_content",
        "decision_date",  # a fallback: there is no 处罚决定日期 column
        "valid_until",
        "person_id",  # read to tell a natural person, never stored
        None,
    )
    with_date = build_mapping(["处罚生效期", "处罚决定日期"], "penalties")
    assert with_date.fields == (None, "decision_date")


def test_the_shuangyashan_platform_keys_are_built_in() -> None:
    headers = ["COMP_NAME", "CF_YXQ", "CF_GSJZQ", "CF_SJLYDM", "CREATE_DEPT_NAME", "RESOURCE_ID"]
    mapping = build_mapping(headers, "penalties")
    assert mapping.fields == (
        "entity_name",
        "valid_until",
        "publish_until",
        "data_source_uscc",
        "data_source",
        None,
    )
    both = build_mapping(["COMP_NAME", "CF_XDR_MC"], "penalties")
    assert both.fields == (None, "entity_name")  # CF_XDR_MC, where given, wins


def test_column_origins_say_how_each_column_got_its_field() -> None:
    from pipeline.sync.sources.fields import column_origins

    headers = ["CF_WSH", "COMP_NAME", "处罚单位", "RESOURCE_ID", "内部编号", "证件号码"]
    overrides = {"处罚单位": "authority"}
    mapping = build_mapping(headers, "penalties", overrides)
    assert column_origins(mapping, overrides) == [
        "alias",
        "fallback",
        "field_map",
        "known_extra",
        "unmapped",
        "personal",
    ]
