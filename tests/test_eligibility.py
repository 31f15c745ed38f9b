"""evaluate(): rule-set selection, periods, repair dates and status precedence."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config.holidays import HolidaysConfig, YearOverride
from pipeline.config.rules import RulesConfig
from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.rules import Evaluation, RecordFacts, evaluate
from tests.helpers import RULE_CASES, boundary_days

D = dt.date
DAY = dt.timedelta(days=1)
RULES = RulesConfig()
CAL = WorkingCalendar()


def record(decision: dt.date, *types: str, **kw: Any) -> RecordFacts:
    base = RecordFacts(
        decision_no="宝山〔2024〕1号",
        authority="宝山区某局",
        entity_name="某某有限公司",
        uscc="91230500MA1B3N1N2M",
        decision_date=decision,
        penalty_types=types or ("罚款",),
    )
    return replace(base, **kw)


def run(facts: RecordFacts, today: dt.date, rules: RulesConfig = RULES) -> Evaluation:
    return evaluate(facts, today, rules, CAL)


@pytest.mark.parametrize(
    ("decision", "given", "rule_set", "severity", "min_end", "max_end"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_every_rule_set_and_severity_at_each_boundary(
    decision: dt.date,
    given: str,
    rule_set: str,
    severity: str,
    min_end: dt.date | None,
    max_end: dt.date,
) -> None:
    facts = record(decision, severity_given=given)
    for today, status in boundary_days(decision, min_end, max_end):
        result = run(facts, today)
        assert (result.rule_set, result.severity, result.severity_source) == (
            rule_set,
            severity,
            "snapshot",
        ), today
        assert (result.min_end, result.max_end, result.period_start) == (min_end, max_end, decision)
        assert result.repairable_from == (min_end + DAY if min_end else None)
        assert result.removal_on == max_end + DAY
        assert result.status == status, f"{today}: {result.reason}"


def test_ndrc_2025_36_general_decided_2026_09_28_in_full() -> None:
    result = run(record(D(2026, 9, 28), severity_given="一般"), D(2026, 11, 27))
    assert result == Evaluation(
        severity="general",
        severity_source="snapshot",
        rule_set="ndrc-2025-36",
        period_start=D(2026, 9, 28),
        min_end=D(2026, 12, 28),
        max_end=D(2027, 9, 28),
        repairable_from=D(2026, 12, 29),
        removal_on=D(2027, 9, 29),
        publish_by=D(2026, 10, 13),
        status="in_min_period",
        reason="ndrc-2025-36 general: min 3 months, max 1 year; "
        "repairable from 2026-12-29; removal on 2027-09-29",
        warnings=(),
    )


def test_ndrc_2025_36_minor_is_not_published_by_default() -> None:
    result = run(record(D(2026, 9, 28), "警告"), D(2026, 11, 27))
    assert (result.status, result.severity, result.severity_source) == (
        "not_published",
        "minor",
        "rule:only-warning",
    )
    assert result.min_end is result.max_end is result.removal_on is result.publish_by is None
    assert "publish_minor" in result.reason


def test_ndrc_2025_36_minor_when_published_lasts_3_months_and_is_repairable_at_once() -> None:
    rules = RulesConfig(publish_minor=True)
    facts = record(D(2026, 9, 28), "警告")
    result = run(facts, D(2026, 9, 28), rules)
    assert (result.min_end, result.repairable_from) == (D(2026, 9, 28), D(2026, 9, 29))
    assert (result.max_end, result.removal_on) == (D(2026, 12, 28), D(2026, 12, 29))
    assert result.status == "in_min_period"
    assert "0 months (repairable at once)" in result.reason
    assert run(facts, D(2026, 9, 29), rules).status == "repairable"
    assert run(facts, D(2026, 12, 28), rules).status == "repairable"
    assert run(facts, D(2026, 12, 29), rules).status == "expired"


def test_rules_copied_with_an_update_use_the_updated_values() -> None:
    rules = RULES.model_copy(update={"publish_minor": True})
    assert run(record(D(2026, 9, 28), "警告"), D(2026, 10, 1), rules).status == "repairable"


@pytest.mark.parametrize(
    ("field", "text", "sector"),
    [
        ("violation_type", "违反《特种设备安全法》", "特种设备"),
        ("facts", "未落实安全生产责任制", "安全生产"),
        ("basis", "《中华人民共和国消防法》第六十条", "消防"),
        ("authority", "双鸭山市宝山区消防救援大队", "消防"),
        ("industry", "特种设备制造", "特种设备"),
        ("violation_type", "生产经营不符合食品安全标准的食品", "食品"),
        ("facts", "销售劣药（不合格药品）", "药品"),
    ],
)
def test_ndrc_2023_58_sector_override_raises_the_minimum_to_1_year(
    field: str, text: str, sector: str
) -> None:
    result = run(record(D(2024, 1, 31), **{field: text}), D(2025, 1, 31))
    assert (result.min_end, result.repairable_from) == (D(2025, 1, 31), D(2025, 2, 1))
    assert result.max_end == D(2027, 1, 31)
    assert result.status == "in_min_period"
    assert f"sector {sector}: min 1 year" in result.reason
    assert run(record(D(2024, 1, 31), **{field: text}), D(2025, 2, 1)).status == "repairable"


def test_sector_overrides_apply_only_in_ndrc_2023_58() -> None:
    for decision in (D(2022, 5, 9), D(2026, 9, 28)):
        result = run(record(decision, facts="安全生产"), D(2026, 11, 27))
        assert result.min_end == decision.replace(month=decision.month + 3)


def _with_overrides(*overrides: dict[str, Any]) -> RulesConfig:
    sets = RULES.model_dump()["rule_sets"]
    sets["ndrc-2023-58"]["sector_overrides"] = list(overrides)
    return RulesConfig.model_validate({"rule_sets": sets})


def test_a_sector_override_can_match_on_the_department_and_a_minimum_fine() -> None:
    rules = _with_overrides(
        {
            "name": "安全生产（应急管理）",
            "departments": ["YJJ"],
            "min_fine_wan": "10",
            "min_months": 12,
        }
    )
    big = record(D(2024, 1, 31), department_code="YJJ", fine_amount_wan=Decimal("12"))
    assert run(big, D(2024, 6, 1), rules).min_end == D(2025, 1, 31)
    assert "sector 安全生产（应急管理）: min 1 year" in run(big, D(2024, 6, 1), rules).reason
    for other in (
        replace(big, fine_amount_wan=Decimal("9.99")),
        replace(big, fine_amount_wan=None),
        replace(big, department_code="SWJ"),
    ):
        assert run(other, D(2024, 6, 1), rules).min_end == D(2024, 4, 30)


def test_a_sector_override_with_departments_and_keywords_needs_both() -> None:
    rules = _with_overrides(
        {
            "name": "食品（市场监管）",
            "departments": ["SCJG"],
            "keywords": ["食品"],
            "min_months": 12,
        }
    )
    food = record(D(2024, 1, 31), department_code="SCJG", facts="销售过期食品")
    assert run(food, D(2024, 6, 1), rules).min_end == D(2025, 1, 31)
    assert run(replace(food, facts="虚假广告"), D(2024, 6, 1), rules).min_end == D(2024, 4, 30)
    assert run(replace(food, department_code="SWJ"), D(2024, 6, 1), rules).min_end == D(2024, 4, 30)


def test_a_sector_override_without_keywords_or_departments_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="give keywords, departments or both"):
        _with_overrides({"name": "空", "min_months": 12})


def test_sector_match_fields_are_configurable() -> None:
    rules = RulesConfig(sector_match_fields=["violation_type"])
    result = run(record(D(2024, 1, 31), facts="安全生产"), D(2025, 1, 31), rules)
    assert result.min_end == D(2024, 4, 30)


def test_ndrc_2019_527_special_serious_area_with_revocation_is_never_early() -> None:
    facts = record(D(2022, 5, 9), "罚款", "吊销排污许可证", violation_type="生态环境违法")
    result = run(facts, D(2023, 1, 1))
    assert (result.severity, result.severity_source) == (
        "special_serious",
        "rule:special-serious-area:生态环境",
    )
    assert result.status == "non_repairable"
    assert result.min_end is None and result.repairable_from is None
    assert result.max_end == D(2025, 5, 9)
    # the snapshot's own severity wins over the recalled area list
    assert run(replace(facts, severity_given="严重"), D(2023, 1, 1)).severity == "serious"


def test_a_never_early_type_of_the_rule_set_makes_the_record_non_repairable() -> None:
    rules = RulesConfig.model_validate(
        {
            "rule_sets": {
                **RULES.model_dump()["rule_sets"],
                "ndrc-2025-36": {
                    **RULES.model_dump()["rule_sets"]["ndrc-2025-36"],
                    "never_early_types": ["限制从业"],
                },
            }
        }
    )
    result = run(record(D(2026, 9, 28), "罚款", "限制从业"), D(2026, 11, 27), rules)
    assert (result.status, result.min_end, result.max_end) == (
        "non_repairable",
        None,
        D(2029, 9, 28),
    )
    assert "限制从业 can never stop early" in result.reason


def test_several_penalty_types_take_the_longest_period() -> None:
    result = run(record(D(2026, 9, 28), "警告", "罚款", "吊销许可证件"), D(2026, 11, 27))
    assert (result.severity, result.min_end, result.max_end) == (
        "serious",
        D(2027, 9, 28),
        D(2029, 9, 28),
    )


# --------------------------------------------------------------------------- 45号令


def market(decision: dt.date, *types: str, **kw: Any) -> RecordFacts:
    return record(decision, *types, market_regulation=True, **kw)


def test_samr_counts_from_the_publication_date() -> None:
    facts = market(D(2024, 3, 1), "罚款", publication_date=D(2024, 3, 15))
    result = run(facts, D(2024, 9, 15))
    assert (result.rule_set, result.period_start) == ("samr-2021-45", D(2024, 3, 15))
    assert (result.min_end, result.repairable_from) == (D(2024, 9, 15), D(2024, 9, 16))
    assert (result.max_end, result.removal_on) == (D(2027, 3, 15), D(2027, 3, 16))
    assert result.status == "in_min_period"
    assert run(facts, D(2024, 9, 16)).status == "repairable"
    assert run(facts, D(2027, 3, 15)).status == "repairable"
    assert run(facts, D(2027, 3, 16)).status == "expired"
    assert "counted from publication 2024-03-15" in result.reason
    assert result.publish_by == D(
        2024, 3, 29
    )  # from the decision date, 45号令's own limit: 20 working days


def test_samr_without_a_publication_date_counts_from_the_decision_and_says_so() -> None:
    result = run(market(D(2024, 3, 1), "罚款"), D(2024, 9, 15))
    assert result.period_start == D(2024, 3, 1)
    assert result.max_end == D(2027, 3, 1)
    assert "publication date unknown: counted from the decision date" in result.reason


def test_samr_publication_before_the_decision_is_a_warning() -> None:
    result = run(market(D(2024, 3, 1), "罚款", publication_date=D(2024, 2, 1)), D(2024, 9, 15))
    assert result.period_start == D(2024, 3, 1)
    assert any("before the decision date" in w for w in result.warnings)


def test_samr_warning_alone_is_not_published() -> None:
    result = run(market(D(2024, 3, 1), "警告"), D(2024, 3, 2))
    assert (result.status, result.max_end) == ("not_published", None)
    assert "a warning alone is not published" in result.reason


def test_samr_criticism_lasts_3_months_and_cannot_stop_before() -> None:
    facts = market(D(2024, 3, 1), "警告", "通报批评", publication_date=D(2024, 3, 5))
    result = run(facts, D(2024, 3, 5))
    assert (result.min_end, result.max_end) == (D(2024, 6, 5), D(2024, 6, 5))
    assert result.status == "in_min_period"
    assert run(facts, D(2024, 6, 5)).status == "in_min_period"
    assert run(facts, D(2024, 6, 6)).status == "expired"


@pytest.mark.parametrize(
    ("threshold", "fine", "max_end"),
    [
        (None, Decimal("0.2"), D(2027, 3, 1)),  # threshold unknown: never low
        (Decimal("1"), Decimal("0.2"), D(2024, 6, 1)),
        (Decimal("1"), Decimal("1"), D(2024, 6, 1)),  # ≤ threshold is low
        (Decimal("1"), Decimal("1.01"), D(2027, 3, 1)),
        (Decimal("1"), None, D(2027, 3, 1)),  # amount unknown: not low
    ],
)
def test_samr_a_low_fine_lasts_3_months_otherwise_3_years(
    threshold: Decimal | None, fine: Decimal | None, max_end: dt.date
) -> None:
    rules = RulesConfig.model_validate({"market_regulation": {"low_fine_threshold_wan": threshold}})
    result = run(market(D(2024, 3, 1), "罚款", fine_amount_wan=fine), D(2024, 3, 2), rules)
    assert result.max_end == max_end


def test_samr_several_types_take_the_longest() -> None:
    rules = RulesConfig.model_validate({"market_regulation": {"low_fine_threshold_wan": "1"}})
    facts = market(D(2024, 3, 1), "通报批评", "没收违法所得", fine_amount_wan=Decimal("0.2"))
    assert run(facts, D(2024, 3, 2), rules).max_end == D(2027, 3, 1)


@pytest.mark.parametrize(
    "penalty",
    [
        "责令停产停业",
        "限制开展生产经营活动",
        "限制从业",
        "降低资质等级",
        "吊销许可证件",
        "吊销营业执照",
    ],
)
def test_samr_never_early_types_are_non_repairable(penalty: str) -> None:
    result = run(market(D(2024, 3, 1), "罚款", penalty), D(2024, 12, 1))
    assert (result.status, result.min_end, result.max_end) == (
        "non_repairable",
        None,
        D(2027, 3, 1),
    )
    assert run(market(D(2024, 3, 1), "罚款", penalty), D(2027, 3, 2)).status == "expired"


def test_samr_earliest_early_stop_is_configurable() -> None:
    rules = RulesConfig.model_validate({"market_regulation": {"earliest_early_stop_months": 12}})
    assert run(market(D(2024, 3, 1), "罚款"), D(2024, 3, 2), rules).min_end == D(2025, 3, 1)


def test_market_regulation_authorities_are_recognised_by_keyword() -> None:
    facts = record(D(2024, 3, 1), authority="双鸭山市宝山区市场监督管理局")
    assert run(facts, D(2024, 3, 2)).rule_set == "samr-2021-45"
    assert run(record(D(2024, 3, 1)), D(2024, 3, 2)).rule_set == "ndrc-2023-58"


def test_market_penalties_before_45_took_effect_follow_the_ndrc_rule_set() -> None:
    assert run(market(D(2021, 8, 31)), D(2022, 1, 1)).rule_set == "ndrc-2019-527"
    assert run(market(D(2021, 9, 1)), D(2022, 1, 1)).rule_set == "samr-2021-45"


# --------------------------------------------------------------------------- errors, warnings


def test_a_decision_after_the_evaluation_date_is_a_value_error() -> None:
    with pytest.raises(ValueError) as info:
        run(record(D(2027, 1, 5)), D(2026, 11, 27))
    assert str(info.value) == "decision date 2027-01-05 is after the evaluation date 2026-11-27"


def test_unknown_severity_text_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="非常严重"):
        run(record(D(2026, 9, 28), severity_given="非常严重"), D(2026, 11, 27))


def test_without_calendar_data_only_the_working_day_date_is_unknown() -> None:
    # 36号令, general, decided 2026-12-24: publish_by falls in 2027, which no data covers
    result = run(record(D(2026, 12, 24)), D(2027, 2, 1))
    assert (
        result.publish_by is None
        and "publish_by unknown: no working-day data for 2027" in result.reason
    )
    assert (result.min_end, result.repairable_from) == (D(2027, 3, 24), D(2027, 3, 25))
    assert (result.max_end, result.removal_on, result.status) == (
        D(2027, 12, 24),
        D(2027, 12, 25),
        "in_min_period",
    )


def test_with_the_year_in_holidays_yaml_the_publish_by_date_is_computed() -> None:
    year = YearOverride(holidays=[D(2027, 1, 1)], complete=True)
    cal = WorkingCalendar(HolidaysConfig(years={2027: year}))
    result = evaluate(record(D(2026, 12, 24)), D(2027, 2, 1), RULES, cal)
    assert result.publish_by == D(
        2027, 1, 5
    )  # 12-25, 12-28 … 12-31, (01-01 off) 01-04, 01-05: the 7th


def test_a_publish_until_before_the_decision_date_is_a_warning() -> None:
    result = run(record(D(2022, 5, 9), publish_until=D(2021, 1, 1)), D(2022, 6, 1))
    assert "公示截止期 2021-01-01 is before the decision date; period recomputed" in result.warnings
    assert result.max_end == D(2023, 5, 9)


def test_a_publish_until_that_differs_from_the_computed_end_is_a_warning() -> None:
    same = run(record(D(2022, 5, 9), publish_until=D(2023, 5, 9)), D(2022, 6, 1))
    assert same.warnings == ()
    other = run(record(D(2022, 5, 9), publish_until=D(2025, 5, 9)), D(2022, 6, 1))
    assert other.warnings == (
        "公示截止期 2025-05-09 differs from the computed end 2023-05-09; recomputed",
    )


def test_selection_by_evaluation_date_uses_the_rule_set_in_force_today() -> None:
    facts = record(D(2025, 1, 10))
    by_decision = run(facts, D(2026, 5, 1))
    assert (by_decision.rule_set, by_decision.status) == ("ndrc-2023-58", "repairable")
    rules = RulesConfig(selection_key="evaluation_date")
    by_today = run(facts, D(2026, 5, 1), rules)
    assert (by_today.rule_set, by_today.max_end, by_today.status) == (
        "ndrc-2025-36",
        D(2026, 1, 10),
        "expired",
    )


def test_art_203_roll_forward_is_off_by_default_and_moves_holiday_ends_when_on() -> None:
    facts = record(D(2026, 7, 4))
    assert run(facts, D(2026, 8, 1)).min_end == D(2026, 10, 4)
    rules = RulesConfig(roll_forward_holidays=True)
    result = run(facts, D(2026, 8, 1), rules)
    assert result.min_end == D(2026, 10, 8)
    # 2027 has no working-day data: the calendar-day end stays, with a warning
    assert result.max_end == D(2027, 7, 4)
    assert "no working-day data for 2027: Art. 203 roll-forward skipped" in result.warnings


def test_a_date_no_rule_set_covers_is_a_value_error() -> None:
    data = RULES.model_dump()
    data["rule_sets"]["ndrc-2019-527"]["effective_from"] = "2019-01-01"
    rules = RulesConfig.model_validate(data)
    with pytest.raises(ValueError, match=r"no rule set in rules\.yaml covers 2018-12-31"):
        run(record(D(2018, 12, 31)), D(2019, 1, 1), rules)


@given(
    decision=st.dates(min_value=D(2019, 1, 1), max_value=D(2026, 11, 30)),
    days_later=st.integers(min_value=0, max_value=4000),
    given_text=st.sampled_from([None, "轻微", "一般", "严重", "特定严重"]),
    types=st.sampled_from([("罚款",), ("警告",), ("通报批评", "罚款"), ("吊销许可证件",)]),
    is_market=st.booleans(),
)
def test_any_record_has_ordered_dates_and_the_status_its_dates_imply(
    decision: dt.date,
    days_later: int,
    given_text: str | None,
    types: tuple[str, ...],
    is_market: bool,
) -> None:
    facts = record(decision, *types, severity_given=given_text, market_regulation=is_market)
    today = decision + dt.timedelta(days=days_later)
    result = run(facts, today)
    if result.status == "not_published":
        assert result.max_end is None
        return
    assert result.max_end is not None and result.removal_on == result.max_end + DAY
    assert result.period_start < result.max_end
    if result.min_end is not None:
        assert result.period_start <= result.min_end <= result.max_end
    if today >= result.removal_on:
        assert result.status == "expired"
    elif result.min_end is None:
        assert result.status == "non_repairable"
    else:
        assert result.status == ("in_min_period" if today <= result.min_end else "repairable")
