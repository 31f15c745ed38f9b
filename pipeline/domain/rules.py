"""Disclosure-period rule sets and the eligibility evaluation of one penalty record.

Pure: no database, no clock. `evaluate` takes the record's facts, the evaluation date,
the validated rules.yaml (`RulesConfig`) and a `WorkingCalendar`, and returns the
periods, the repair dates and a status with a human-readable reason. It runs once per
record (a million of them), so everything that depends only on the config is prepared
once when `RulesConfig` is built (see `_Engine`) and per-value results are cached.

The rules (docs/domain.md §2): NDRC rule sets selected by decision date, each with
per-severity minimum/maximum periods; the market-regulation rule set (45号令) counting
from the publication date; status precedence not_published · expired · non_repairable ·
in_min_period · repairable.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from pipeline.config.rules import (
    MarketRegulationRules,
    RulesConfig,
    RuleSet,
    SectorOverride,
    Severity,
    SeverityRule,
    Status,
)
from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.periods import period_end
from pipeline.errors import CalendarError

SEVERITY_RANK: dict[str, int] = {"minor": 0, "general": 1, "serious": 2, "special_serious": 3}
ONE_DAY = dt.timedelta(days=1)

# Snapshot severity texts (失信严重程度), normalised by `_from_text`.
_SEVERITY_TEXT: dict[str, Severity] = {
    "轻微": "minor",
    "minor": "minor",
    "一般": "general",
    "general": "general",
    "严重": "serious",
    "serious": "serious",
    "特定严重": "special_serious",
    "special serious": "special_serious",
    "specially serious": "special_serious",
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFacts:
    """What evaluation needs of one penalty record."""

    decision_no: str
    authority: str
    entity_name: str
    uscc: str
    decision_date: dt.date
    publication_date: dt.date | None = None
    penalty_types: tuple[str, ...]
    penalty_content: str = ""
    fine_amount_wan: Decimal | None = None
    severity_given: str | None = None
    violation_type: str = ""
    facts: str = ""
    basis: str = ""
    industry: str = ""
    market_regulation: bool = False
    """The penalising department is market regulation (departments.yaml flag)."""
    department_code: str = ""
    """The department the record is routed to (sector overrides may name departments)."""
    publish_until: dt.date | None = None
    """CF_GSJZQ as the source gives it: compared for a warning only, never used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    severity: Severity
    severity_source: str
    rule_set: str
    period_start: dt.date
    min_end: dt.date | None
    max_end: dt.date | None
    repairable_from: dt.date | None
    removal_on: dt.date | None
    publish_by: dt.date | None
    status: Status
    reason: str
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class _Plan:
    """The rule-set decision for one record, before any date arithmetic."""

    rule_set: str
    severity: Severity
    source: str
    start: dt.date
    min_months: int | None = None
    max_months: int | None = None  # None: not published
    never_early: str | None = None  # why it can never stop early
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- engine


class _Engine:
    """Config-derived lookups, built once per RulesConfig, plus per-value caches.

    The caches are keyed by values that repeat across a million records (dates,
    authority names, penalty-type tuples), so they stay small.
    """

    def __init__(self, rules: RulesConfig) -> None:
        self.rules = rules
        self.ndrc = sorted(
            rules.rule_sets.items(), key=lambda kv: kv[1].effective_from or dt.date.min
        )
        self.by_date: dict[dt.date, tuple[str, RuleSet]] = {}
        self.market_by_authority: dict[str, bool] = {}
        self.mr_keywords = tuple(rules.market_regulation.authority_keywords)
        self.severity_rules = [
            (r, f"rule:{r.name}", _content_pattern(r)) for r in rules.severity_rules
        ]
        self.types_cache: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[bool, ...]]] = {}
        self.periods = {
            (rs_id, sev): (p.min_months, p.max_months)
            for rs_id, rs in rules.rule_sets.items()
            for sev in SEVERITY_RANK
            if (p := getattr(rs.periods, sev)) is not None
        }
        self.overrides = {
            rs_id: [
                (o, _keywords_pattern(o.keywords) if o.keywords else None)
                for o in rs.sector_overrides
            ]
            for rs_id, rs in rules.rule_sets.items()
        }
        self.sector_fields = attrgetter(*rules.sector_match_fields)

    def rule_set(self, day: dt.date) -> tuple[str, RuleSet]:
        found = self.by_date.get(day)
        if found is None:
            found = next(((i, rs) for i, rs in self.ndrc if rs.covers(day)), None)
            if found is None:
                raise ValueError(f"no rule set in rules.yaml covers {day}")
            self.by_date[day] = found
        return found

    def is_market(self, facts: RecordFacts) -> bool:
        return facts.market_regulation or self.market_authority(facts.authority)

    def market_authority(self, authority: str) -> bool:
        """The authority's name says market regulation (`authority_keywords`)."""
        known = self.market_by_authority.get(authority)
        if known is None:
            known = any(k in authority for k in self.mr_keywords)
            self.market_by_authority[authority] = known
        return known

    def types_info(self, raw: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        """(cleaned types, does each severity rule match on the types alone)."""
        info = self.types_cache.get(raw)
        if info is None:
            types = tuple(t.strip() for t in raw if t.strip())
            hits = tuple(_types_match(r, types) for r, _, _ in self.severity_rules)
            info = self.types_cache[raw] = (types, hits)
        return info

    def sector_text(self, facts: RecordFacts) -> str:
        """The fields sector keywords are looked for in, as one text."""
        values = self.sector_fields(facts)
        return values if isinstance(values, str) else "\n".join(values)


_Override = tuple[SectorOverride, re.Pattern[str] | None]


def _keywords_pattern(keywords: list[str]) -> re.Pattern[str]:
    """One compiled alternation: the text is scanned once, not once per keyword."""
    return re.compile("|".join(re.escape(k) for k in keywords))


def _content_pattern(rule: SeverityRule) -> re.Pattern[str] | None:
    if not rule.any_keywords or "penalty_content" not in rule.fields:
        return None
    return _keywords_pattern(rule.any_keywords)


def _types_match(rule: SeverityRule, types: tuple[str, ...]) -> bool:
    if rule.only_types is not None:
        return bool(types) and all(t in rule.only_types for t in types)
    if "penalty_types" not in rule.fields:
        return False
    return any(k in t for t in types for k in rule.any_keywords or ())


_ENGINES: dict[int, tuple[RulesConfig, _Engine]] = {}


def _engine(rules: RulesConfig) -> _Engine:
    """The engine of `rules`, built once per config object (the config stays untouched).

    Keyed by identity: the entry holds the config itself, so its id cannot be reused
    while the entry lives. A handful of configs exist in a process (one in production).
    """
    found = _ENGINES.get(id(rules))
    if found is None:
        if len(_ENGINES) >= 16:
            _ENGINES.clear()
        found = _ENGINES[id(rules)] = (rules, _Engine(rules))
    return found[1]


# --------------------------------------------------------------------------- severity


def classify(
    given: str | None,
    penalty_types: tuple[str, ...],
    content: str,
    rules: RulesConfig | None = None,
) -> tuple[Severity, str]:
    """(severity, severity_source): the snapshot's text when given, else the first rule.

    Unknown snapshot text raises ValueError naming it (the caller reports it per record).
    """
    if given is not None and given.strip():
        return _from_text(given), "snapshot"
    engine = _engine(rules or _DEFAULT_RULES)
    _, hits = engine.types_info(tuple(penalty_types))
    for (rule, source, pattern), hit in zip(engine.severity_rules, hits, strict=True):
        if hit or (pattern is not None and pattern.search(content)):
            return rule.severity, source
    return engine.rules.default_severity, "rule:default"


def _from_text(given: str) -> Severity:
    severity = _TEXT_CACHE.get(given)
    if severity is None:
        severity = _TEXT_CACHE[given] = _parse_severity(given)
    return severity


_TEXT_CACHE: dict[str, Severity] = {}  # a handful of distinct texts across all records


def _parse_severity(given: str) -> Severity:
    key = " ".join(given.strip().lower().replace("_", " ").replace("-", " ").split())
    for suffix in ("失信行为", "失信"):
        key = key.removesuffix(suffix)
    severity = _SEVERITY_TEXT.get(key)
    if severity is None:
        raise ValueError(f"unknown severity {given!r} (expected 轻微/一般/严重/特定严重)")
    return severity


# --------------------------------------------------------------------------- plans


def _ndrc_plan(facts: RecordFacts, key: dt.date, engine: _Engine) -> _Plan:
    rs_id, rs = engine.rule_set(key)
    severity, source = classify(
        facts.severity_given, facts.penalty_types, facts.penalty_content, engine.rules
    )
    plan = _Plan(rs_id, severity, source, facts.decision_date)
    if rs.special_serious_areas and source != "snapshot":
        _special_area(plan, facts, rs, engine)
    if plan.severity == "minor" and rs.minor_as is not None:
        # 527/58 have no minor class: minor penalties take the general periods
        plan.notes.append(f"minor treated as {rs.minor_as}")
        plan.severity = rs.minor_as
    if plan.severity == "minor" and not engine.rules.publish_minor:
        plan.notes.append("minor penalties are not published (publish_minor is off)")
        return plan
    plan.min_months, plan.max_months = engine.periods[rs_id, plan.severity]
    if rs.sector_overrides:
        _sector_override(plan, facts, engine.overrides[rs_id], engine)
    _never_early(plan, facts.penalty_types, rs.never_early_types)
    return plan


def _special_area(plan: _Plan, facts: RecordFacts, rs: RuleSet, engine: _Engine) -> None:
    """527: penalties in listed areas with 责令停产停业/吊销 are special serious."""
    if not any(k in t for t in facts.penalty_types for k in rs.special_serious_types):
        return
    text = engine.sector_text(facts)
    area = next((a for a in rs.special_serious_areas if a in text), None)
    if area is not None:
        plan.severity, plan.source = "special_serious", f"rule:special-serious-area:{area}"


def _sector_override(
    plan: _Plan, facts: RecordFacts, overrides: list[_Override], engine: _Engine
) -> None:
    """58号令 sectors: the first matching override (in config order) sets the minimum."""
    if plan.max_months is None or plan.min_months is None:
        return  # not published, or never early anyway
    text = engine.sector_text(facts)
    for override, pattern in overrides:
        if plan.severity in override.severities and _sector_match(override, pattern, facts, text):
            plan.min_months = min(override.min_months, plan.max_months)
            plan.notes.append(f"sector {override.name}: min {_span(plan.min_months)}")
            return


def _sector_match(
    override: SectorOverride, pattern: re.Pattern[str] | None, facts: RecordFacts, text: str
) -> bool:
    if override.departments and facts.department_code not in override.departments:
        return False
    if pattern is not None and not pattern.search(text):
        return False
    threshold, fine = override.min_fine_wan, facts.fine_amount_wan
    return threshold is None or (fine is not None and fine >= threshold)


def _never_early(plan: _Plan, types: tuple[str, ...], never_types: list[str]) -> None:
    if plan.severity == "special_serious":
        plan.never_early = "special serious"
        return
    if not never_types:
        return
    hit = next((t for t in types for k in never_types if k in t), None)
    if hit is not None:
        plan.never_early = f"penalty type {hit} can never stop early"


def _market_plan(facts: RecordFacts, rules: RulesConfig) -> _Plan:
    mr = rules.market_regulation
    severity, source = classify(
        facts.severity_given, facts.penalty_types, facts.penalty_content, rules
    )
    plan = _Plan(mr.id, severity, source, facts.publication_date or facts.decision_date)
    _market_start(plan, facts)
    types = [t.strip() for t in facts.penalty_types if t.strip()]
    published = [t for t in types if t not in mr.not_published_types]
    if types and not published:
        plan.notes.append("a warning alone is not published")
        return plan
    # several types: the longest period of its types
    plan.max_months = max((_market_months(t, facts, mr) for t in published), default=mr.long_months)
    plan.min_months = min(mr.earliest_early_stop_months, plan.max_months)
    _never_early(plan, tuple(types), mr.never_early_types)
    return plan


def _market_start(plan: _Plan, facts: RecordFacts) -> None:
    if facts.publication_date is None:
        plan.notes.append("publication date unknown: counted from the decision date")
    elif facts.publication_date < facts.decision_date:
        plan.start = facts.decision_date
        plan.warnings.append(
            f"publication date {facts.publication_date} is before the decision date; "
            "counted from the decision date"
        )
    else:
        plan.notes.append(f"counted from publication {facts.publication_date}")


def _market_months(penalty_type: str, facts: RecordFacts, mr: MarketRegulationRules) -> int:
    if any(k in penalty_type for k in mr.short_types):
        return mr.short_months
    if any(k in penalty_type for k in mr.fine_types) and _low_fine(facts, mr):
        return mr.short_months
    return mr.long_months


def _low_fine(facts: RecordFacts, mr: MarketRegulationRules) -> bool:
    threshold, amount = mr.low_fine_threshold_wan, facts.fine_amount_wan
    return threshold is not None and amount is not None and amount <= threshold


# --------------------------------------------------------------------------- evaluate


def evaluate(
    facts: RecordFacts, today: dt.date, rules: RulesConfig, calendar: WorkingCalendar
) -> Evaluation:
    """Periods, repair dates and status of one record on `today`.

    Raises ValueError (decision after `today`, unknown severity text, no rule set for the
    date); the caller marks that record as an error and goes on.
    """
    if facts.decision_date > today:
        raise ValueError(
            f"decision date {facts.decision_date} is after the evaluation date {today}"
        )
    key = today if rules.selection_key == "evaluation_date" else facts.decision_date
    plan = _plan(facts, key, rules)
    publish_by = _publish_by(facts, plan, rules, calendar)
    if plan.max_months is None:
        return _finish(plan, None, None, "not_published", publish_by, facts)
    max_end = _end(plan, plan.max_months, rules, calendar)
    min_end = None
    if plan.never_early is None and plan.min_months is not None:
        min_end = _end(plan, plan.min_months, rules, calendar)
    status = _status(today, min_end, max_end + ONE_DAY, plan.never_early is not None)
    return _finish(plan, min_end, max_end, status, publish_by, facts)


def _plan(facts: RecordFacts, key: dt.date, rules: RulesConfig) -> _Plan:
    mr = rules.market_regulation
    engine = _engine(rules)
    if engine.is_market(facts) and (mr.effective_from is None or key >= mr.effective_from):
        return _market_plan(facts, rules)
    return _ndrc_plan(facts, key, engine)


def _status(today: dt.date, min_end: dt.date | None, removal_on: dt.date, never: bool) -> Status:
    # precedence per domain.md: not_published (handled by caller) · expired ·
    # non_repairable · in_min_period · repairable
    if today >= removal_on:
        return "expired"
    if never or min_end is None:
        return "non_repairable"
    return "in_min_period" if today <= min_end else "repairable"


def _end(plan: _Plan, months: int, rules: RulesConfig, calendar: WorkingCalendar) -> dt.date:
    try:
        return period_end(plan.start, months, rules.roll_forward_holidays, calendar)
    except CalendarError as exc:
        # Art. 203 is optional; without data keep the calendar-day end and say so
        plan.warnings.append(f"no working-day data for {exc.year}: Art. 203 roll-forward skipped")
        return period_end(plan.start, months)


def _publish_by(
    facts: RecordFacts, plan: _Plan, rules: RulesConfig, calendar: WorkingCalendar
) -> dt.date | None:
    if plan.max_months is None:
        return None  # never published: no publication deadline
    # The periods are calendar arithmetic and stand without working-day data; only this
    # date needs it. The notice promises it, so without data it is unknown (None, said in
    # the reason) rather than guessed — and the rest of the evaluation goes on.
    try:
        days = rules.publish_within_working_days
        if plan.rule_set == rules.market_regulation.id:
            days = rules.market_regulation.publish_within_working_days
        return calendar.add_working_days(facts.decision_date, days)
    except CalendarError as exc:
        plan.notes.append(f"publish_by unknown: no working-day data for {exc.year}")
        return None


def _finish(
    plan: _Plan,
    min_end: dt.date | None,
    max_end: dt.date | None,
    status: Status,
    publish_by: dt.date | None,
    facts: RecordFacts,
) -> Evaluation:
    _check_publish_until(plan, facts, max_end)
    return Evaluation(
        severity=plan.severity,
        severity_source=plan.source,
        rule_set=plan.rule_set,
        period_start=plan.start,
        min_end=min_end,
        max_end=max_end,
        repairable_from=min_end + ONE_DAY if min_end else None,
        removal_on=max_end + ONE_DAY if max_end else None,
        publish_by=publish_by,
        status=status,
        reason=_reason(plan, min_end, max_end, status),
        warnings=tuple(plan.warnings),
    )


def _check_publish_until(plan: _Plan, facts: RecordFacts, max_end: dt.date | None) -> None:
    until = facts.publish_until
    if until is None:
        return
    if until < facts.decision_date:
        plan.warnings.append(f"公示截止期 {until} is before the decision date; period recomputed")
    elif max_end is not None and until not in (max_end, max_end + ONE_DAY):
        plan.warnings.append(
            f"公示截止期 {until} differs from the computed end {max_end}; recomputed"
        )


def _reason(plan: _Plan, min_end: dt.date | None, max_end: dt.date | None, status: Status) -> str:
    head = f"{plan.rule_set} {plan.severity}"
    notes = "".join(f" ({note})" for note in plan.notes) if plan.notes else ""
    if max_end is None:
        return f"{head}{notes}: not published"
    longest = _span(plan.max_months or 0)
    if plan.never_early is not None:
        body = f"never early ({plan.never_early}), max {longest}"
    else:
        body = f"min {_span(plan.min_months or 0)}, max {longest}"
    removal = _iso(max_end + ONE_DAY)
    if status == "expired":
        tail = f"removed on {removal}"
    elif min_end is not None:
        tail = f"repairable from {_iso(min_end + ONE_DAY)}; removal on {removal}"
    else:
        tail = f"removal on {removal}"
    return f"{head}{notes}: {body}; {tail}"


_ISO: dict[dt.date, str] = {}


def _iso(day: dt.date) -> str:
    """date → 'YYYY-MM-DD', cached: formatting dates is a visible share of evaluate()."""
    text = _ISO.get(day)
    if text is None:
        text = _ISO[day] = day.isoformat()
    return text


@lru_cache(maxsize=256)
def _span(months: int) -> str:
    if months == 0:
        return "0 months (repairable at once)"
    if months % 12 == 0:
        years = months // 12
        return f"{years} year" + ("s" if years > 1 else "")
    return f"{months} month" + ("s" if months > 1 else "")


# --------------------------------------------------------------------------- keys


class FactsKey:
    """What `evaluate` reads of a record, reduced to a small key: records with equal keys
    get equal evaluations (on one `today`, under one rules config and one calendar).

    A million records share some tens of thousands of keys, so the recompute evaluates one
    record per key (`pipeline.ledger.eligibility`). Taken as they are: the decision,
    publication and 公示截止期 dates, the penalty types and the severity text. Everything
    else enters only through the answers `evaluate` asks of it:

    - the department: is it a market-regulation department, and, on the NDRC path, is it
      one of each sector override's departments;
    - the authority: does its name say market regulation (with the department and the
      date: is this a 45号令 record);
    - the penalty content: which severity rules' keywords it holds (only when no severity
      is given);
    - the sector text, on the NDRC path: which special-serious areas and sector-override
      keywords it holds (an alternation of literal keywords matches where one of them
      occurs);
    - the fine: how it compares with each configured threshold.

    Called with one row (a sequence); `positions` names the index of each `RecordFacts`
    field in it, `market_regulation` excepted: that is the department's flag (a department
    in `market_departments`). Values may come as the database driver gives them (ISO text
    dates from SQLite): `to_date` and `to_decimal` convert a date and the fine where a rule
    compares them.
    """

    def __init__(
        self,
        rules: RulesConfig,
        today: dt.date,
        positions: dict[str, int],
        market_departments: frozenset[str],
        to_date: Callable[[Any], dt.date | None],
        to_decimal: Callable[[Any], Decimal | None],
    ) -> None:
        engine = self.engine = _engine(rules)
        self.today, self.to_date, self.to_decimal = today, to_date, to_decimal
        self.market_departments = market_departments
        self.by_today = rules.selection_key == "evaluation_date"
        mr = rules.market_regulation
        self.mr_from = mr.effective_from
        self.market_thresholds: tuple[Decimal, ...] = (
            () if mr.low_fine_threshold_wan is None else (mr.low_fine_threshold_wan,)
        )
        self.content = tuple(p for _, _, p in engine.severity_rules if p is not None)
        self.ndrc: dict[str | None, _NdrcTests] = {
            rs_id: (
                tuple(
                    dict.fromkeys(
                        [
                            *rs.special_serious_areas,
                            *(k for o in rs.sector_overrides for k in o.keywords),
                        ]
                    )
                ),
                tuple(frozenset(o.departments) for o in rs.sector_overrides if o.departments),
                tuple(o.min_fine_wan for o in rs.sector_overrides if o.min_fine_wan is not None),
            )
            for rs_id, rs in rules.rule_sets.items()
        }
        self.ndrc[None] = ((), (), ())  # no rule set covers the date: evaluate says so
        self.selections: dict[Any, tuple[str | None, bool]] = {}
        self.fines: dict[tuple[Any, tuple[Decimal, ...]], tuple[bool, ...]] = {}
        p = positions
        self.fields = itemgetter(
            p["decision_date"],
            p["publication_date"],
            p["publish_until"],
            p["department_code"],
            p["penalty_types"],
            p["severity_given"],
            p["authority"],
            p["penalty_content"],
            p["fine_amount_wan"],
        )
        self.text_at = tuple(p[name] for name in rules.sector_match_fields)

    def __call__(self, row: Sequence[Any]) -> tuple[Any, ...]:
        decided, published, until, department, types, given, authority, content, fine = self.fields(
            row
        )
        selection = self.selections.get(decided)
        if selection is None:
            selection = self.selections[decided] = self._selection(decided)
        rule_set, market_in_force = selection
        market_department = department in self.market_departments
        market = market_in_force and (market_department or self.engine.market_authority(authority))
        if given is not None and given.strip():
            severity: Any = given
        else:
            text = content or ""
            severity = tuple([p.search(text) is not None for p in self.content])
        texts: Any = None
        departments: Any = None
        if market:
            thresholds = self.market_thresholds
        else:
            words, department_sets, thresholds = self.ndrc[rule_set]
            if words:
                sector = "\n".join([row[i] or "" for i in self.text_at])
                texts = tuple([w in sector for w in words])
            if department_sets:
                departments = tuple([department in d for d in department_sets])
        fines = self._fine(fine, thresholds) if thresholds else None
        return (
            decided,
            published,
            until,
            market_department,
            market,
            types,
            severity,
            texts,
            departments,
            fines,
        )

    def _selection(self, decided: Any) -> tuple[str | None, bool]:
        """(the NDRC rule set of the selection date, whether 45号令 is in force on it)."""
        day = self.today if self.by_today else self.to_date(decided)
        if day is None:
            return None, False
        rule_set = next((i for i, rs in self.engine.ndrc if rs.covers(day)), None)
        return rule_set, self.mr_from is None or day >= self.mr_from

    def _fine(self, fine: Any, thresholds: tuple[Decimal, ...]) -> tuple[bool, ...]:
        """The fine against each threshold: at least it (sector overrides), or, for the
        market threshold, at most it — both kept, a key only has to tell fines apart."""
        found = self.fines.get((fine, thresholds))
        if found is None:
            if len(self.fines) >= _FINES_MEMO:
                self.fines.clear()  # every fine may differ: keep the memo bounded
            amount = self.to_decimal(fine)
            found = self.fines[(fine, thresholds)] = tuple(
                x
                for t in thresholds
                for x in (amount is not None and amount >= t, amount is not None and amount <= t)
            )
        return found


_FINES_MEMO = 100_000


_NdrcTests = tuple[tuple[str, ...], tuple[frozenset[str], ...], tuple[Decimal, ...]]
"""Per NDRC rule set: the words looked for in the sector text (special-serious areas and
sector-override keywords), each override's departments (those that name some), and the
overrides' fine thresholds."""


_DEFAULT_RULES = RulesConfig()
