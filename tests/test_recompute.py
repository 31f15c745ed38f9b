"""The recompute's shortcuts give exactly what evaluating every record alone gives.

- `FactsKey`: records with equal keys get equal evaluations (the recompute evaluates one
  record per key);
- `records.evaluated_key`: a record whose facts, rules, calendar and code are those of its
  stored results, and whose status did not move, is left out — on any day, later or earlier,
  after a sync that changed some facts, and after a rules change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, and_, select, update

from pipeline.config import Config
from pipeline.config.holidays import YearOverride
from pipeline.config.rules import RulesConfig
from pipeline.db.models import LedgerEvent, Record, table_of
from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.rules import FactsKey, RecordFacts, evaluate
from pipeline.ledger import eligibility, state
from pipeline.ledger.eligibility import RESULT_FIELDS, Evaluator, recompute
from pipeline.ledger.state import SYSTEM, Lifecycle, Policy, apply_lifecycle, change, is_green
from pipeline.sync.loading import file_target, run_target
from pipeline.sync.samplegen import penalties
from tests.helpers import EMERGENCY, EMERGENCY_USCC, TAX, penalty, write_rows

records = table_of(Record)
TZ = dt.timezone(dt.timedelta(hours=8))
MARKET = "宝山区市场监督管理局"
MARKET_USCC = "11230506000000035Q"


# --------------------------------------------------------------------------- FactsKey


def _facts_pool(rng: random.Random, n: int) -> list[RecordFacts]:
    """Facts that reach every branch: rule sets, market regulation, special-serious areas,
    sector overrides, severity texts (unknown ones too), fines, publication dates."""
    days = [dt.date(2021, 1, 1) + dt.timedelta(days=rng.randrange(2200)) for _ in range(40)]
    days += [dt.date(2023, 4, 30), dt.date(2023, 5, 1), dt.date(2026, 3, 31), dt.date(2026, 4, 1)]
    days += [dt.date(2021, 8, 31), dt.date(2021, 9, 1), dt.date(2027, 2, 1)]  # the last: future
    types = [
        ("罚款",),
        ("警告",),
        ("警告", "罚款"),
        ("通报批评",),
        ("责令停产停业", "罚款"),
        ("吊销许可证件",),
        ("限制从业",),
        (" 罚款 ", ""),
        ("",),
    ]
    texts = [
        "",
        "销售过期食品",
        "药品经营",
        "特种设备未检验",
        "安全生产事故",
        "消防通道",
        "生态环境污染",
    ]
    authorities = [TAX, EMERGENCY, MARKET, "某某市场监管所", "宝山区消防救援大队"]
    out = []
    for _ in range(n):
        decided = rng.choice(days)
        out.append(
            RecordFacts(
                decision_no="x",
                authority=rng.choice(authorities),
                entity_name=rng.choice(["甲公司", "食品公司"]),
                uscc="",
                decision_date=decided,
                publication_date=rng.choice(
                    [None, decided, decided + dt.timedelta(days=3), decided - dt.timedelta(days=2)]
                ),
                penalty_types=rng.choice(types),
                penalty_content=rng.choice(["", "罚款人民币2000元", "吊销许可证", "责令关闭"]),
                fine_amount_wan=rng.choice([None, Decimal("0.2"), Decimal("5"), Decimal("50")]),
                severity_given=rng.choice([None, None, "", "一般", "严重", "特定严重", "很重"]),
                violation_type=rng.choice(texts),
                facts=rng.choice(texts),
                basis=rng.choice(["", "《食品安全法》"]),
                industry=rng.choice(["", "餐饮", "食品生产"]),
                market_regulation=False,
                department_code=rng.choice(["SW", "YJ", "SJ", "XF"]),
                publish_until=rng.choice([None, None, decided, dt.date(2020, 1, 1)]),
            )
        )
    return out


def _with_thresholds(rules: RulesConfig) -> RulesConfig:
    """The shipped rules plus fine thresholds and a department-only override."""
    rule_sets = dict(rules.rule_sets)
    rs = rule_sets["ndrc-2023-58"]
    overrides = [
        rs.sector_overrides[0].model_copy(update={"min_fine_wan": Decimal("5")}),
        *rs.sector_overrides[1:],
        rs.sector_overrides[0].model_copy(
            update={"name": "消防部门", "keywords": [], "departments": ["XF"], "min_months": 9}
        ),
    ]
    rule_sets["ndrc-2023-58"] = rs.model_copy(update={"sector_overrides": overrides})
    market = rules.market_regulation.model_copy(update={"low_fine_threshold_wan": Decimal("5")})
    return rules.model_copy(update={"rule_sets": rule_sets, "market_regulation": market})


def _outcome(facts: RecordFacts, today: dt.date, rules: RulesConfig, cal: WorkingCalendar) -> Any:
    try:
        return evaluate(facts, today, rules, cal)
    except ValueError as exc:
        return str(exc)


@pytest.mark.parametrize("variant", ["shipped", "thresholds", "by_evaluation_date"])
def test_records_with_equal_keys_get_equal_evaluations(config: Config, variant: str) -> None:
    rules = config.rules
    if variant == "thresholds":
        rules = _with_thresholds(rules)
    elif variant == "by_evaluation_date":
        rules = rules.model_copy(update={"selection_key": "evaluation_date"})
    cal = WorkingCalendar(config.holidays)
    fields = [f.name for f in dataclasses.fields(RecordFacts)]
    positions = {name: i for i, name in enumerate(fields)}
    pool = _facts_pool(random.Random(5), 4000)
    markets = frozenset({"SJ"})
    for today in (dt.date(2024, 6, 1), dt.date(2026, 11, 27)):
        key = FactsKey(rules, today, positions, markets, lambda d: d, lambda f: f)
        groups: dict[tuple[Any, ...], Any] = {}
        for facts in pool:
            facts = dataclasses.replace(facts, market_regulation=facts.department_code in markets)
            row = [getattr(facts, name) for name in fields]
            outcome = _outcome(facts, today, rules, cal)
            first = groups.setdefault(key(row), outcome)
            assert outcome == first, (facts, outcome, first)
            # what no rule reads, and free text no keyword is in, leave the key as it is
            other = dataclasses.replace(
                facts,
                decision_no="y",
                entity_name="乙公司",
                uscc="91230506MA1B3N1N2M",
                facts=f"{facts.facts}（第{len(groups)}次）",
                penalty_content=f"{facts.penalty_content}，当场缴纳",
            )
            assert key([getattr(other, name) for name in fields]) == key(row)


# --------------------------------------------------------------------------- the database


def _rows() -> list[dict[str, str]]:
    """Generated penalties (every authority, type and year) and the edge cases."""
    rows = [
        {**row, "CF_XDR_SHXYM": row["CF_XDR_SHXYM"]}
        for row in penalties(150, seed=3, out_of_scope=0.0)
    ]
    rows += [
        penalty(9001, CF_JDRQ="2022-05-09", CF_CFLB="责令停产停业;罚款", CF_SY="生态环境违法"),
        penalty(
            9002,
            CF_JDRQ="2024-02-01",
            CF_SY="销售过期食品",
            CF_CFJG=EMERGENCY,
            CF_CFJGDM=EMERGENCY_USCC,
        ),
        penalty(9003, 失信严重程度="严重", CF_JDRQ="2025-01-02"),
        penalty(9004, 失信严重程度="很重"),  # unknown severity: an error record
        penalty(9005, CF_JDRQ="2026-12-20"),  # after the first days below: an error, then not
        penalty(9006, CF_JDRQ="2024-03-01", CF_CFJG=MARKET, CF_CFJGDM=MARKET_USCC, CF_CFLB="警告"),
        penalty(9007, CF_JDRQ="2025-11-20", CF_GSJZQ="2020-01-01"),
        penalty(9008, CF_JDRQ="2026-11-26"),  # in its minimum period a few days
    ]
    return rows


def _sync(engine: Engine, config: Config, path: Path, now: dt.datetime) -> None:
    result = run_target(engine, config, file_target(str(path), "penalties"), now, force=True)
    assert not result.refused, result.reason


def _reference(engine: Engine, evaluator: Evaluator, today: dt.date) -> dict[int, dict[str, Any]]:
    """Every penalty evaluated alone, as `eligibility` would for one record."""
    with engine.connect() as conn:
        rows = conn.execute(select(records).where(records.c.kind == "penalty")).mappings().all()
    return {row["id"]: evaluator.columns(row, today) for row in rows}


def _stored(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(records).where(records.c.kind == "penalty")).mappings().all()
    return {row["id"]: {k: row[k] for k in RESULT_FIELDS} for row in rows}


def _check(engine: Engine, evaluator: Evaluator, today: dt.date) -> tuple[int, int]:
    result = recompute(engine, evaluator, today, batch=37)  # pages end mid-way
    expected = _reference(engine, evaluator, today)
    assert _stored(engine) == expected, today
    statuses = Counter(v["status"] for v in expected.values())
    assert result.by_status == dict(statuses) and list(result.by_status) == [
        s
        for s in (
            "not_published",
            "expired",
            "non_repairable",
            "in_min_period",
            "repairable",
            "error",
        )
        if s in statuses
    ]
    assert (result.evaluated, result.errors) == (len(expected), statuses["error"])
    with engine.connect() as conn:
        keys = {
            k
            for (k,) in conn.execute(
                select(records.c.evaluated_key).where(records.c.kind == "penalty")
            )
        }
    assert None not in keys
    return result.changed, len(expected)


def test_the_daily_recompute_equals_evaluating_every_record_alone(
    engine: Engine, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[int] = []
    real = eligibility._Memo.__call__

    def counted(self: Any, row: Any) -> Any:
        evaluated.append(row[1])
        return real(self, row)

    monkeypatch.setattr(eligibility._Memo, "__call__", counted)
    rows = _rows()
    path = write_rows(tmp_path / "p.csv", rows)
    _sync(engine, config, path, dt.datetime(2026, 11, 27, 7, tzinfo=TZ))
    evaluator = Evaluator.from_config(config)
    changed, total = _check(engine, evaluator, dt.date(2026, 11, 27))
    assert changed == total == len(evaluated)  # the first evaluation writes every record
    evaluated.clear()
    assert _check(engine, evaluator, dt.date(2026, 11, 27))[0] == 0  # again: nothing moves
    assert len(evaluated) == 2  # only the two errors (an error is always evaluated again)
    evaluated.clear()
    changed, _ = _check(engine, evaluator, dt.date(2027, 2, 26))
    assert changed > 1 and len(evaluated) == changed + 1  # the moved ones, the one error left
    days = [
        dt.date(2026, 11, 28),
        dt.date(2026, 12, 20),  # 9005's decision day: no longer an error
        dt.date(2027, 2, 26),  # 9008 repairable; many expired
        dt.date(2026, 1, 5),  # earlier: statuses move back, 9005 is an error again
        dt.date(2030, 1, 1),
    ]
    for day in days:
        _check(engine, evaluator, day)
    # a sync that changes facts: those records are evaluated anew
    rows[0] = {**rows[0], "CF_JDRQ": "2026-10-10", "CF_CFLB": "吊销许可证件"}
    rows[-1] = {**rows[-1], "失信严重程度": "严重"}
    _sync(
        engine, config, write_rows(tmp_path / "p2.csv", rows), dt.datetime(2030, 1, 2, 7, tzinfo=TZ)
    )
    _check(engine, evaluator, dt.date(2030, 1, 2))
    _check(engine, evaluator, dt.date(2026, 11, 27))
    # a rules change re-evaluates every record under the new rules
    rule_sets = dict(config.rules.rule_sets)
    rs = rule_sets["ndrc-2023-58"]
    periods = rs.periods.model_copy(
        update={"general": rs.periods.general.model_copy(update={"min_months": 6})}
    )  # type: ignore[union-attr]
    rule_sets["ndrc-2023-58"] = rs.model_copy(update={"periods": periods})
    changed_rules = dataclasses.replace(
        evaluator, rules=config.rules.model_copy(update={"rule_sets": rule_sets})
    )
    assert changed_rules.fingerprint != evaluator.fingerprint
    assert _check(engine, changed_rules, dt.date(2026, 11, 27))[0] > 0
    # back to the shipped rules; a record whose key was wiped is evaluated again
    with engine.begin() as conn:
        conn.execute(update(records).values(evaluated_key=None))
    assert _check(engine, evaluator, dt.date(2026, 11, 27))[0] > 0
    assert _check(engine, evaluator, dt.date(2026, 11, 27))[0] == 0


def test_evaluation_by_date_of_evaluation_never_skips(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    """selection_key: evaluation_date — the rule set follows the day, so every record is
    evaluated every day (the key cannot vouch for it)."""
    _sync(
        engine,
        config,
        write_rows(tmp_path / "p.csv", _rows()),
        dt.datetime(2026, 11, 27, 7, tzinfo=TZ),
    )
    rules = config.rules.model_copy(update={"selection_key": "evaluation_date"})
    evaluator = dataclasses.replace(Evaluator.from_config(config), rules=rules)
    for day in (dt.date(2026, 3, 31), dt.date(2026, 4, 1), dt.date(2026, 3, 31)):
        _check(engine, evaluator, day)


def test_the_fingerprint_follows_the_calendar_and_the_market_departments(config: Config) -> None:
    evaluator = Evaluator.from_config(config)
    years = dict(config.holidays.years)
    years[2031] = YearOverride(holidays=[dt.date(2031, 1, 2)])
    holidays = config.holidays.model_copy(update={"years": years})
    other_calendar = dataclasses.replace(evaluator, calendar=WorkingCalendar(holidays))
    other_markets = dataclasses.replace(evaluator, market_departments=frozenset({"SW"}))
    fingerprints = {evaluator.fingerprint, other_calendar.fingerprint, other_markets.fingerprint}
    assert len(fingerprints) == 3
    assert Evaluator.from_config(config).fingerprint == evaluator.fingerprint  # stable


# --------------------------------------------------------------------------- ledger transitions


def test_green_marks_set_by_the_database_are_is_greens(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    """`apply_lifecycle` evaluates `is_green` in SQL: every record gets what `is_green` says,
    with one event per changed field, as `change` writes them."""
    names = [
        "双鸭山市康健医药有限公司",
        "双鸭山市医疗器械商贸有限公司",
        "双鸭山市甲有限公司",
        "宝山区ABC医药店",
    ]
    facts = ["", "经查，当事人销售防疫物资", "未按期申报", "abc"]
    industries = ["", "医疗", "餐饮", "医药批发", "生活必需品供应链"]
    rows = [
        penalty(
            i,
            CF_XDR_MC=names[i % len(names)],
            CF_SY=facts[(i // 4) % len(facts)],
            CF_WFXW="未按规定防疫" if i % 7 == 0 else "未按期办理纳税申报",
            行业=industries[(i // 3) % len(industries)],
        )
        for i in range(1, 61)
    ]
    _sync(
        engine,
        config,
        write_rows(tmp_path / "g.csv", rows),
        dt.datetime(2026, 11, 27, 7, tzinfo=TZ),
    )
    green = config.settings.green_channel.model_copy(
        update={
            "entities": [rows[5]["CF_XDR_SHXYM"], ""],
            "keywords": ["医疗器械", "防疫", "ABC", "abc"],
        }
    )
    now = dt.datetime(2026, 11, 27, 8, tzinfo=TZ)
    first = _green_transition(engine, dt.date(2026, 11, 27), now, green)
    assert first.green_marked > 3 and first.green_unmarked == 0
    # the configuration changes: marks follow it, in both directions
    fewer = green.model_copy(update={"keywords": ["防疫"], "industries": ["医疗"]})
    second = _green_transition(engine, dt.date(2026, 11, 28), now, fewer)
    assert second.green_unmarked > 0
    # an empty keyword is in every text and `is_green` stops there with no reason; an
    # empty industry is in every industry
    odd = green.model_copy(
        update={"entities": [], "keywords": ["防疫", "", "abc"], "industries": [""]}
    )
    third = _green_transition(engine, dt.date(2026, 11, 29), now, odd)
    assert third.green_marked > 0
    with engine.connect() as conn:
        stored = conn.execute(select(records)).mappings().all()
    reasons = {row["green_reason"] for row in stored}
    assert "keyword abc" not in reasons and {r for r in reasons if r and r.startswith("industry")}
    # records the empty keyword leaves out though a later keyword is in their text
    assert [r for r in stored if not r["industry"] and "abc" in (r["facts"] or "")]
    # nothing moves: no write, no event
    assert _green_transition(engine, dt.date(2026, 11, 30), now, odd).green_marked == 0


def _green_transition(engine: Engine, today: dt.date, now: dt.datetime, green: Any) -> Any:
    """`apply_lifecycle` with `green`: every record gets what `is_green` says, and the new
    events are those `change` writes (one per field that changed, old → new as text)."""
    ledger_events = table_of(LedgerEvent)
    with engine.connect() as conn:
        before = {row["id"]: row for row in conn.execute(select(records)).mappings().all()}
        last = conn.execute(select(ledger_events.c.id).order_by(ledger_events.c.id.desc())).scalar()
    result = apply_lifecycle(engine, today, now, green)
    with engine.connect() as conn:
        after = conn.execute(select(records)).mappings().all()
        new_events = (
            conn.execute(select(ledger_events).where(ledger_events.c.id > (last or 0)))
            .mappings()
            .all()
        )
    expected = set()
    for row in after:
        reason = is_green(row, green)
        assert (row["green_channel"], row["green_reason"]) == (reason is not None, reason), row
        old = before[row["id"]]
        for name, text in (("green_channel", str), ("green_reason", lambda v: v)):
            if old[name] != row[name]:
                expected.add((row["id"], name, text(old[name]), text(row[name])))
    assert {
        (e["record_id"], e["field"], e["old_value"], e["new_value"]) for e in new_events
    } == expected
    assert len(new_events) == len(expected)
    for e in new_events:
        assert (e["source"], e["actor"], e["note"], e["at"]) == (
            "eligibility",
            "credit-repair",
            None,
            now,
        )
    moved = {
        row["id"] for row in after if before[row["id"]]["green_channel"] != row["green_channel"]
    }
    assert result.green_marked + result.green_unmarked >= len(moved)
    return result


# --------------------------------------------------------------------------- old and new transitions


def _reference_lifecycle(
    conn: Connection, today: dt.date, now: dt.datetime, policy: Policy
) -> Lifecycle:
    """`apply_lifecycle` as it was before issue 13 (one `change` per record, `is_green`
    in Python): the reference the set-based transitions must equal."""
    r = records.c
    result = Lifecycle()
    for row in conn.execute(
        select(records).where(
            r.closed_on.is_(None), r.vanished_on.is_not(None), r.verify_reason.is_(None)
        )
    ).mappings():
        values, counter, note = state._vanished(row)
        change(conn, row, values, now, "sync", SYSTEM, note)
        setattr(result, counter, getattr(result, counter) + 1)
    due = and_(r.closed_on.is_(None), r.kind == "penalty", r.removal_on <= today)
    if policy.overdue_display:
        due = and_(due, r.vanished_on.is_not(None))
    for row in conn.execute(select(records).where(due)).mappings():
        values = {"closed_on": row["removal_on"], "close_reason": "expired"}
        change(
            conn, row, values, now, "eligibility", SYSTEM, "maximum disclosure period ended (销账)"
        )
        result.expired += 1
    if policy.overdue_display and policy.overdue_before is not None:
        shown = and_(
            r.closed_on.is_(None),
            r.kind == "penalty",
            r.vanished_on.is_(None),
            r.removal_on <= policy.overdue_before,
            r.overdue_display_since.is_(None),
        )
        for row in conn.execute(select(records).where(shown)).mappings():
            note = (
                f"still published {row['removal_on']} after the maximum period: "
                "ask the site to take it down"
            )
            change(conn, row, {"overdue_display_since": today}, now, "eligibility", SYSTEM, note)
            result.overdue_display += 1
    state._reopen_reappeared(conn, now, result)
    for row in conn.execute(select(records).where(r.closed_on.is_(None))).mappings():
        reason = is_green(row, policy.green)
        if bool(reason) != row["green_channel"] or (reason and reason != row["green_reason"]):
            values = {"green_channel": bool(reason), "green_reason": reason}
            change(conn, row, values, now, "eligibility", SYSTEM)
            result.green_marked += bool(reason)
            result.green_unmarked += not reason
    return result


def _ledger(conn: Connection) -> tuple[dict[int, dict[str, Any]], Counter[tuple[Any, ...]]]:
    """Every record as stored, and the history rows (without their ids)."""
    ledger_events = table_of(LedgerEvent)
    stored = {row["id"]: dict(row) for row in conn.execute(select(records)).mappings()}
    history = Counter(
        tuple(v for k, v in row.items() if k != "id")
        for row in conn.execute(select(ledger_events)).mappings()
    )
    return stored, history


def _same_transitions(engine: Engine, today: dt.date, policy: Policy) -> Lifecycle:
    now = dt.datetime.combine(today, dt.time(8), TZ)
    with engine.connect() as conn:
        trans = conn.begin()
        expected_result = _reference_lifecycle(conn, today, now, policy)
        expected = _ledger(conn)
        trans.rollback()
    result = apply_lifecycle(engine, today, now, policy.green, policy)
    with engine.connect() as conn:
        got = _ledger(conn)
    assert got[0] == expected[0], today
    assert got[1] == expected[1], today
    assert result == expected_result
    return result


def test_the_transitions_equal_the_row_by_row_ones(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    """Closures (销账), 超期仍公示 flags, 待核实, reopening and green marks: the same records,
    values and history rows as one `change` per record, across syncs and both policies."""
    rows = _rows()
    rows += [
        penalty(9101 + i, CF_SY=text, 行业=industry, CF_JDRQ=day)
        for i, (text, industry, day) in enumerate(
            [
                ("销售过期食品", "", "2021-03-01"),
                ("未按规定防疫", "餐饮", "2025-06-01"),
                ("医疗废物处置不当", "医疗", "2026-10-01"),
                ("生态环境违法", "", "2019-05-01"),
            ]
        )
    ]
    green = config.settings.green_channel.model_copy(
        update={
            "keywords": ["食品", "防疫", "有限公司"],
            "industries": ["医疗"],
            "entities": [rows[7]["CF_XDR_SHXYM"]],
        }
    )
    keep = Policy(green, overdue_display=True, overdue_before=dt.date(2026, 11, 17))
    close = Policy(green.model_copy(update={"keywords": ["防疫"]}), overdue_display=False)
    evaluator = Evaluator.from_config(config)
    steps: list[tuple[dt.date, list[dict[str, str]], Policy]] = [
        (dt.date(2026, 11, 27), rows, keep),  # the first evaluation
        (dt.date(2026, 11, 28), rows, keep),  # the next day: nearly nothing moves
        (dt.date(2027, 3, 1), [r for i, r in enumerate(rows) if i % 5], keep),  # vanished
        (dt.date(2027, 6, 1), rows, close),  # back again; expired ones closed
        (dt.date(2030, 1, 2), rows[::2], keep),
    ]
    totals = Lifecycle()
    for i, (day, snapshot, policy) in enumerate(steps):
        now = dt.datetime.combine(day, dt.time(7), TZ)
        _sync(engine, config, write_rows(tmp_path / f"s{i}.csv", snapshot), now)
        recompute(engine, evaluator, day)
        result = _same_transitions(engine, day, policy)
        for name, value in result.as_json().items():
            setattr(totals, name, getattr(totals, name) + value)
    # every transition of a penalty was exercised (lists: `removed`; never automatic:
    # `repaired_early`)
    exercised = ("expired", "reopened", "green_marked", "green_unmarked", "to_confirm")
    assert all(getattr(totals, name) for name in (*exercised, "overdue_display")), totals
