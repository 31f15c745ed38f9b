"""rules.yaml: the disclosure-period rule sets, severity classification and flags.

The models only; the evaluation engine built from them is `pipeline.domain.rules`.
The defaults equal the shipped file (docs/domain.md §2).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import pairwise
from typing import Literal

from pydantic import Field, model_validator

from pipeline.config.base import Strict

Severity = Literal["minor", "general", "serious", "special_serious"]
Status = Literal["not_published", "expired", "non_repairable", "in_min_period", "repairable"]
SectorField = Literal["violation_type", "facts", "basis", "authority", "industry"]
SeverityField = Literal["penalty_types", "penalty_content"]


def _general_and_serious() -> list[Severity]:
    return ["general", "serious"]


def _types_and_content() -> list[SeverityField]:
    return ["penalty_types", "penalty_content"]


def _all_sector_fields() -> list[SectorField]:
    return ["violation_type", "facts", "basis", "authority", "industry"]


class Period(Strict):
    min_months: int | None = Field(ge=0)
    """Months before early repair is possible; null = never early."""
    max_months: int = Field(ge=1)
    """Months until the record comes down by itself."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Period:
        if self.min_months is not None and self.min_months > self.max_months:
            raise ValueError(f"min_months {self.min_months} > max_months {self.max_months}")
        return self


class Periods(Strict):
    minor: Period | None = None
    general: Period
    serious: Period
    special_serious: Period


class SectorOverride(Strict):
    """A sector whose penalties have another minimum (58号令: 食品/药品/特种设备/安全生产/消防
    → 1 year). Every test given must hold: the department, a keyword, the fine."""

    name: str
    keywords: list[str] = Field(default_factory=list)
    """Matched as substrings of the fields in `sector_match_fields`."""
    departments: list[str] = Field(default_factory=list)
    """Department codes (departments.yaml): only their penalties match — with `keywords`,
    those within the remit the keywords name; without, all of them."""
    min_fine_wan: Decimal | None = None
    """Only penalties with a fine of at least this (万元), e.g. a serious safety violation."""
    min_months: int = Field(ge=0)
    severities: list[Severity] = Field(default_factory=_general_and_serious)

    @model_validator(mode="after")
    def _some_test(self) -> SectorOverride:
        if not self.keywords and not self.departments:
            raise ValueError(f"sector override {self.name!r}: give keywords, departments or both")
        return self


class RuleSet(Strict):
    title: str = ""
    effective_from: dt.date | None = None
    """First decision date the rule set applies to (inclusive); null = since always."""
    effective_to: dt.date | None = None
    """Last decision date (inclusive); null = still in force."""
    minor_as: Severity | None = None
    """Where minor is no separate class: the class minor penalties are treated as."""
    periods: Periods
    never_early_types: list[str] = Field(default_factory=list)
    """Penalty-type keywords that can never stop early (substring of a penalty type)."""
    sector_overrides: list[SectorOverride] = Field(default_factory=list)
    special_serious_areas: list[str] = Field(default_factory=list)
    """Area keywords that make a penalty special serious when it also has one of
    `special_serious_types` (527: recalled, unverified)."""
    special_serious_types: list[str] = Field(default_factory=list)
    repeat_offender_bar: bool = False
    """The rule set bars (or limits) repair for an entity penalised again (36号令)."""
    repeat_offender_years: int | None = Field(None, ge=1)
    """The bar's look-back in years; null = unknown: any earlier penalty is flagged for a
    person to check, never decided."""

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        if self.minor_as == "minor":
            raise ValueError("minor_as cannot be minor")
        if self.periods.minor is None and self.minor_as is None:
            raise ValueError("give periods.minor or minor_as")
        if self.effective_from and self.effective_to and self.effective_from > self.effective_to:
            raise ValueError("effective_from is after effective_to")
        return self

    def covers(self, day: dt.date) -> bool:
        return (self.effective_from is None or self.effective_from <= day) and (
            self.effective_to is None or day <= self.effective_to
        )


class MarketRegulationRules(Strict):
    """总局令第45号 (market regulation, gsxt.gov.cn): counts from the publication date."""

    id: str = "samr-2021-45"
    effective_from: dt.date | None = dt.date(2021, 9, 1)
    """Earlier decisions follow the NDRC rule set of their date."""
    authority_keywords: list[str] = Field(default_factory=lambda: ["市场监督管理", "市场监管"])
    not_published_types: list[str] = Field(default_factory=lambda: ["警告"])
    """A penalty of only these types is never published."""
    short_types: list[str] = Field(default_factory=lambda: ["通报批评"])
    fine_types: list[str] = Field(default_factory=lambda: ["罚款"])
    low_fine_threshold_wan: Decimal | None = None
    """A fine ≤ this (万元) is 'low' → short period; null = unknown → never low."""
    short_months: int = Field(3, ge=1)
    long_months: int = Field(36, ge=1)
    never_early_types: list[str] = Field(
        default_factory=lambda: [
            "责令停产停业",
            "限制开展生产经营活动",
            "限制从业",
            "降低资质等级",
            "吊销许可证件",
            "吊销营业执照",
        ]
    )
    earliest_early_stop_months: int = Field(6, ge=0)
    """Earliest early stop (unverified; capped at the period itself)."""
    publish_within_working_days: int = Field(20, ge=0)
    """Publication time limit of 45号令 (unverified), for publish_by of its records."""


class SeverityRule(Strict):
    """One ordered classification rule; the first that matches decides."""

    name: str
    severity: Severity
    only_types: list[str] | None = None
    """Matches when every penalty type is one of these (and there is at least one)."""
    any_keywords: list[str] | None = None
    """Matches when a keyword occurs in one of `fields`."""
    fields: list[SeverityField] = Field(default_factory=_types_and_content)

    @model_validator(mode="after")
    def _one_test(self) -> SeverityRule:
        if (self.only_types is None) == (self.any_keywords is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of only_types, any_keywords")
        return self


def _default_rule_sets() -> dict[str, RuleSet]:
    return {
        "ndrc-2019-527": RuleSet(
            title="发改办财金〔2019〕527号",
            effective_to=dt.date(2023, 4, 30),
            minor_as="general",
            periods=Periods(
                general=Period(min_months=3, max_months=12),
                serious=Period(min_months=6, max_months=36),
                special_serious=Period(min_months=None, max_months=36),
            ),
            special_serious_areas=[
                "食品药品",
                "生态环境",
                "工程质量",
                "安全生产",
                "消防安全",
                "强制性产品认证",
            ],
            special_serious_types=["责令停产停业", "吊销"],
        ),
        "ndrc-2023-58": RuleSet(
            title="国家发展改革委令第58号",
            effective_from=dt.date(2023, 5, 1),
            effective_to=dt.date(2026, 3, 31),
            minor_as="general",
            periods=Periods(
                general=Period(min_months=3, max_months=36),
                serious=Period(min_months=3, max_months=36),
                special_serious=Period(min_months=None, max_months=36),
            ),
            sector_overrides=[
                SectorOverride(name="食品", keywords=["食品"], min_months=12),
                SectorOverride(name="药品", keywords=["药品"], min_months=12),
                SectorOverride(name="特种设备", keywords=["特种设备"], min_months=12),
                SectorOverride(name="安全生产", keywords=["安全生产"], min_months=12),
                SectorOverride(name="消防", keywords=["消防"], min_months=12),
            ],
        ),
        "ndrc-2025-36": RuleSet(
            title="国家发展改革委令第36号《信用修复管理办法》",
            effective_from=dt.date(2026, 4, 1),
            repeat_offender_bar=True,
            periods=Periods(
                minor=Period(min_months=0, max_months=3),
                general=Period(min_months=3, max_months=12),
                serious=Period(min_months=12, max_months=36),
                special_serious=Period(min_months=None, max_months=36),
            ),
        ),
    }


def _default_severity_rules() -> list[SeverityRule]:
    return [
        SeverityRule(name="only-warning", severity="minor", only_types=["警告", "通报批评"]),
        SeverityRule(
            name="revocation-or-closure",
            severity="serious",
            any_keywords=["吊销", "责令停产停业", "责令关闭", "限制从业", "降低资质等级"],
        ),
    ]


class ListRule(Strict):
    """A severe-dishonesty list's own periods (附件4 可修复时间), counted from the listing date."""

    earliest_removal_months: int | None = Field(None, ge=0)
    """When removal may first be applied for (0: at once, e.g. on performance); null: unknown."""
    removal_months: int | None = Field(None, ge=1)
    """When the entry comes off by itself; null: unknown or never by itself."""


def _default_lists() -> dict[str, ListRule]:
    return {
        "安全生产严重失信主体名单": ListRule(earliest_removal_months=12, removal_months=36),
        "失信被执行人名单": ListRule(earliest_removal_months=0, removal_months=24),
    }


class Restrictions(Strict):
    """修复受限: facts that may keep a company from repairing, flagged with the reason."""

    severe_list: bool = True
    """Flag a penalty whose entity is on an open severe-dishonesty list entry."""
    same_violation_window_months: int | None = Field(12, ge=1)
    """Flag a penalty with another of the same violation type (same entity) decided within
    this many months of it; null: off."""


class RulesConfig(Strict):
    """rules.yaml. The defaults equal the shipped file."""

    selection_key: Literal["decision_date", "evaluation_date"] = "decision_date"
    publish_minor: bool = False
    roll_forward_holidays: bool = False
    publish_within_working_days: int = Field(7, ge=0)
    sector_match_fields: list[SectorField] = Field(
        default_factory=_all_sector_fields,
        min_length=1,
    )
    rule_sets: dict[str, RuleSet] = Field(default_factory=_default_rule_sets)
    market_regulation: MarketRegulationRules = Field(default_factory=MarketRegulationRules)
    severity_rules: list[SeverityRule] = Field(default_factory=_default_severity_rules)
    default_severity: Severity = "general"
    restrictions: Restrictions = Field(default_factory=Restrictions)
    lists: dict[str, ListRule] = Field(default_factory=_default_lists)
    """Severe-dishonesty lists by name (列表名称 as in the snapshot)."""

    @model_validator(mode="after")
    def _no_overlap(self) -> RulesConfig:
        ordered = sorted(self.rule_sets.items(), key=lambda kv: kv[1].effective_from or dt.date.min)
        for (a_id, a), (b_id, b) in pairwise(ordered):
            if a.effective_to is None or (b.effective_from and a.effective_to >= b.effective_from):
                raise ValueError(f"rule_sets: {a_id} and {b_id} overlap")
        if not self.rule_sets:
            raise ValueError("rule_sets: at least one rule set is needed")
        return self
