"""notices.yaml: which notices, when, through which channels, and their wording."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Strict
from pipeline.errors import ConfigError

ChannelName = Literal["email", "sms", "manual"]
KINDS = (
    "repair_notice",
    "eligibility_reminder",
    "follow_up",
    "list_notice",
    "department_digest",
    "department_reminder",
    "escalation",
    "monthly_report",
)


TOLD_KINDS = ("repair_notice", "list_notice")
"""The notices whose delivery tells a company (ledger progress 1 已告知)."""


class Route(Strict):
    name: str
    url: str


class Wording(Strict):
    """What a 告知书 says under one rule set: its documents, what to submit, how to apply."""

    basis: str
    """The document under which the record is published (first sentence of 附件5)."""
    citation: str
    """The document under which the company applies (second sentence)."""
    repair_term: str = "信用修复"
    """What the company applies for (45号令: 提前停止公示)."""
    severity_words: bool = True
    """Print the NDRC severity class (一般失信 …); not for market regulation (45号令)."""
    sites: list[str] | None = None
    """Where it is published, when not the notices' `sites` (45号令: the gsxt system)."""
    apply: str = ""
    """Where and how to apply, a clause: "通过“信用中国”网站…在线提交申请"."""
    materials: list[str] = Field(default_factory=list)
    """What to submit, each item as printed."""
    process: str = ""
    """The process and its time limits, a sentence (say so where a limit is unverified)."""
    commitment: str = ""
    """The credit commitment (信用承诺) every applicant makes, a sentence."""


def _all_channels() -> list[ChannelName]:
    return ["email", "sms", "manual"]


class KindSettings(Strict):
    enabled: bool = True
    channels: list[ChannelName] = Field(default_factory=_all_channels)
    attach_docx: bool = False
    working_days_before: int = Field(5, ge=0)
    grace_days: int = Field(7, ge=0)
    after_days: int = Field(30, ge=1)
    max_times: int = Field(2, ge=0)
    send_empty: bool = False
    """monthly_report only: also mail a report with no records (default: written and logged)."""
    max_cases: int = Field(100, ge=1, le=10000)
    """department_digest only: cases listed per section (green channel first); the rest are
    counted, and the digest points to the ledger export for the full list."""

    @field_validator("channels")
    @classmethod
    def _some(cls, value: list[ChannelName]) -> list[ChannelName]:
        if not value:
            raise ValueError("at least one channel is needed")
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value


class OutboxSettings(Strict):
    max_attempts: int = Field(5, ge=1)
    backoff_seconds: float = Field(60, gt=0)
    max_backoff_seconds: float = Field(6 * 3600, gt=0)
    lease_seconds: int = Field(600, ge=10)
    batch_size: int = Field(50, ge=1, le=1000)


def _default_kinds() -> dict[str, KindSettings]:
    return {
        "repair_notice": KindSettings(attach_docx=True),
        "eligibility_reminder": KindSettings(channels=["sms", "email", "manual"]),
        "follow_up": KindSettings(channels=["sms", "email"]),
        "list_notice": KindSettings(),
        "department_digest": KindSettings(channels=["email"]),
        "department_reminder": KindSettings(channels=["email"]),
        "escalation": KindSettings(channels=["email"]),
        "monthly_report": KindSettings(channels=["email"]),
    }


Reason = Literal["not_reported", "stuck", "past_planned", "undelivered"]
REASONS: tuple[Reason, ...] = ("not_reported", "stuck", "past_planned", "undelivered")


class EscalationSettings(Strict):
    """The ladder run by the 20th: department contact → department head → bureau."""

    stuck_after_days: int = Field(30, ge=1)
    """A repairable case whose company is willing but has not applied this long is stuck."""
    reasons: list[Reason] = Field(default_factory=lambda: list(REASONS))
    max_level: int = Field(3, ge=1, le=3)


class NoticesConfig(Strict):
    issuer: str = "宝山区营商环境局"
    """The bureau: signs department digests and reports; named on notices for questions."""
    issued_by: Literal["authority", "bureau"] = "authority"
    """Who signs a 告知书: the penalising authority (处罚即告知, 附件5's "XXX局"), or the bureau."""
    publish_within_working_days: int = 7
    sites: list[str] = Field(
        default_factory=lambda: ["信用中国", "信用中国（黑龙江）", "信用中国（双鸭山）"]
    )
    routes: dict[str, Route] = Field(
        default_factory=lambda: {
            "default": Route(name="信用中国", url="https://www.creditchina.gov.cn"),
            "market_regulation": Route(
                name="国家企业信用信息公示系统", url="https://www.gsxt.gov.cn"
            ),
        }
    )
    rule_wording: dict[str, Wording] = Field(default_factory=dict)
    list_rules: dict[str, str] = Field(
        default_factory=lambda: {"default": "请向认定部门了解移出条件和程序。"}
    )
    kinds: dict[str, KindSettings] = Field(default_factory=_default_kinds)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: dict[str, KindSettings]) -> dict[str, KindSettings]:
        for name, settings in kinds.items():
            if name not in KINDS:
                raise ValueError(f"unknown notice kind {name!r} (known: {', '.join(KINDS)})")
            if name != "monthly_report" and "send_empty" in settings.model_fields_set:
                raise ValueError(f"{name}.send_empty: only monthly_report has send_empty")
            if name != "department_digest" and "max_cases" in settings.model_fields_set:
                raise ValueError(f"{name}.max_cases: only department_digest has max_cases")
        return {**_default_kinds(), **kinds}

    @field_validator("routes")
    @classmethod
    def _default_route(cls, routes: dict[str, Route]) -> dict[str, Route]:
        if "default" not in routes:
            raise ValueError("routes.default is needed")
        return routes

    def kind(self, name: str) -> KindSettings:
        return self.kinds[name]

    def wording(self, rule_set: str | None) -> Wording:
        found = self.rule_wording.get(rule_set or "")
        if found is None:
            raise ConfigError(f"notices.yaml: rule_wording: no wording for rule set {rule_set!r}")
        return found
