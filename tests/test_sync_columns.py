"""The sync's bulk paths agree with the row-by-row ones they replace (issue 13).

- `ColumnPlan.run` (rows validated column by column) gives, for every row, what
  `RowValidator.validate` gives: the same values (type and repr too: they are hashed),
  or the same issues, out-of-scope reason, key and identity; on hostile cells, other
  headers, absent columns, cells that are not text.
- `RawDigest.many` is `RawDigest.__call__` for each row; the bulk USCC check is `is_clean`.
- A CSV read in batches gives the rows, numbers and errors of the row-by-row reader.
- A first load (straight into `records`) stores what a sync through the staging table
  stores, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from pipeline.config import Config
from pipeline.db.models import SNAPSHOT_FIELDS, Record, RecordChange, table_of
from pipeline.domain.routing import Router
from pipeline.domain.uscc import ALPHABET, is_clean, make_uscc
from pipeline.errors import InputError
from pipeline.sync.columns import OUTPUT_FIELDS, ColumnPlan, _uscc_faults
from pipeline.sync.normalize import DateOrder
from pipeline.sync.rows import RawDigest, RowOutcome, RowValidator
from pipeline.sync.samplegen import PENALTY_HEADERS
from pipeline.sync.snapshot import SyncRequest, sync_snapshot
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.fields import build_mapping
from pipeline.sync.sources.files import read_snapshot
from tests.helpers import EMERGENCY, EMERGENCY_USCC, TAX, TAX_USCC, penalty, uscc, write_rows

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))

# --------------------------------------------------------------------------- cells

TEXTS = [
    "",
    "  空格在两边  ",
    "两个  空格",
    "制表\t符",
    "换\n行",
    "全角\u3000空格",
    "控制\x00字符",
    "响铃\x07",
    "C1\x85控制",
    "C1\x9f控制",
    "零宽\u200b空格",
    "it's",
    'say "hi"',
    "back\\slash",
    "竖|线",
    "长" * 320,
    "\ufeff开头",
]
NUMBERS = [
    "宝税罚【2026】{n}号",
    "宝税罚（2026）{n}号",
    "宝税罚[2026]{n}号",
    "宝税罚〔２０２６〕{n}号",
    "宝税罚〔2026〕第0{n}号",
    "宝税罚〔2026〕0{n}号",
    " 宝税罚〔2026〕{n}号 ",
    "宝税罚〔2026〕{n}号\u200b",
    "宝税罚〔2026〕{n}号\ue000",
    "宝 税罚〔2026〕{n}号",
    "宝\u3164罚〔2026〕{n}号",
    "宝税罚〔2026〕{n}号\x01",
    "",
    "罚" * 210,
    "宝税罚〔2026〕1号",  # a duplicate key within the batch
]
CODES = [
    "{u}",
    "{u_lower}",
    " {u} ",
    "{u_spaced}",
    "{u_bad_check}",
    "{u_bad_org}",
    "000000000000000000",
    "111111111111111111",
    "91230506MA1B3N1N2",
    "123456789012345",
    "12345678-9",
    "230506199001011234",
    "９１２３０５０６",
    "null",
    "-",
    "",
    "{u_elsewhere}",
    "{u_with_I}",
]
DATES = [
    "2026-09-28",
    "2026/9/28",
    "2026年9月28日",
    "20260928",
    "2026-09-28 10:00:00",
    "",
    "null",
    "2026-13-01",
    "昨天",
    "03/29/2018",
    "1568131200000",
]
AMOUNTS = [
    "0.2",
    "0.20",
    "",
    "2000元",
    "0.2万元",
    "罚款人民币二十万元",
    "没收违法所得13.07万元，罚款53.07万元",
    "-1",
    "abc",
    "1e20",
    "1,000.5",
    "无",
]
CONTENTS = [
    "罚款人民币2000元",
    "没收违法所得13.07万元，罚款53.07万元",
    "罚款、没收非法财物人民币5000元",
    "警告",
    "",
    "没收违法所得",
]
TYPES = ["罚款", "警告;罚款", "罚款、没收违法所得", "", " 警告 ; 罚款 ", "没收违法所得;罚款"]
AUTHORITIES = [
    (TAX, TAX_USCC),
    (EMERGENCY, EMERGENCY_USCC),
    ("哈尔滨市道里区市场监督管理局", "112301020000009917"),
    ("", ""),
    (f" {EMERGENCY} ", EMERGENCY_USCC.lower()),
    (EMERGENCY + "\u200b", ""),
    ("局" * 210, TAX_USCC),
    ("某个未配置的局", "11230506MA00000000"),
]
ENTITY_TYPES = ["法人及非法人组织", "自然人", "个体工商户", ""]

COLUMN_CHOICES: dict[str, list[str]] = {
    "CF_XDR_MC": TEXTS,
    "CF_XDR_LB": ENTITY_TYPES + TEXTS[:4],
    "CF_FRDB": ["张伟", "", "长" * 120, *TEXTS[:6]],
    "CF_WFXW": TEXTS,
    "CF_SY": TEXTS,
    "CF_YJ": TEXTS,
    "CF_CFLB": TYPES,
    "CF_NR": CONTENTS + TEXTS[:3],
    "CF_NR_FK": AMOUNTS,
    "CF_NR_WFFF": AMOUNTS,
    "CF_NR_ZKDX": ["", "许可证号123", *TEXTS[5:8]],
    "CF_JDRQ": DATES,
    "CF_YXQ": DATES,
    "CF_GSJZQ": DATES,
    "CF_SJLY": ["", TAX, *TEXTS[:3]],
    "CF_SJLYDM": ["", TAX_USCC, "abc", "123456789012345"],
    "BZ": ["", "备注", "控制\x01字符", "竖|线"],
}


def _code(template: str, n: int) -> str:
    good = uscc(n)
    values = {
        "u": good,
        "u_lower": good.lower(),
        "u_spaced": good[:8] + " " + good[8:],
        "u_bad_check": good[:17] + ("0" if good[17] != "0" else "1"),
        "u_bad_org": good[:16] + ("0" if good[16] != "0" else "1") + good[17],
        "u_elsewhere": uscc(n, area="230502"),
        "u_with_I": good[:10] + "I" + good[11:],
    }
    return template.format(**values)


@st.composite
def penalty_rows(draw: st.DrawFn, count: int = 30) -> list[dict[str, str]]:
    """Rows like the exports' (most clean), with some cells swapped for hostile ones."""
    rows = []
    for n in range(1, draw(st.integers(1, count)) + 1):
        row = penalty(n)
        if draw(st.integers(0, 3)) == 0:
            for column in draw(st.sets(st.sampled_from(sorted(COLUMN_CHOICES)), max_size=4)):
                row[column] = draw(st.sampled_from(COLUMN_CHOICES[column]))
        if draw(st.integers(0, 5)) == 0:
            row["CF_WSH"] = draw(st.sampled_from(NUMBERS)).format(n=n)
        if draw(st.integers(0, 5)) == 0:
            row["CF_XDR_SHXYM"] = _code(draw(st.sampled_from(CODES)), n)
        if draw(st.integers(0, 6)) == 0:
            row["CF_CFJG"], row["CF_CFJGDM"] = draw(st.sampled_from(AUTHORITIES))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- agreement


def _validator(config: Config, headers: Sequence[str], order: DateOrder = "ymd") -> RowValidator:
    mapping = build_mapping(list(headers), "penalties", {})
    router = Router(config.departments, config.settings.jurisdiction)
    return RowValidator("penalty", mapping, router, order)


def _as_raw(rows: list[dict[str, str]], headers: Sequence[str]) -> list[RawRow]:
    return [RawRow(i + 2, [row.get(h, "") for h in headers]) for i, row in enumerate(rows)]


def _same_value(got: Any, expected: Any) -> bool:
    return type(got) is type(expected) and got == expected and repr(got) == repr(expected)


def assert_agrees(validator: RowValidator, rows: Sequence[RawRow]) -> None:
    """`ColumnPlan.run(rows)` is `[validator.validate(row) for row in rows]`."""
    got = ColumnPlan(validator).run(rows)
    expected = [validator.validate(row) for row in rows]
    positions = list(got.accepted) + [p for p, _ in got.outcomes]
    assert sorted(positions) == list(range(len(rows)))
    for j, position in enumerate(got.accepted):
        outcome = expected[position]
        assert outcome.values is not None and not outcome.issues, (position, outcome)
        for name in OUTPUT_FIELDS:
            value = got.values[name][j]
            assert _same_value(value, outcome.values[name]), (position, name, value)
    for position, outcome in got.outcomes:
        assert _fields(outcome) == _fields(expected[position]), position


def _fields(outcome: RowOutcome) -> tuple[Any, ...]:
    return (
        outcome.row_no,
        outcome.values,
        outcome.issues,
        outcome.out_of_scope,
        outcome.scope_reason,
        outcome.key,
        outcome.identity,
    )


SLOW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SLOW
@given(rows=penalty_rows())
def test_the_column_plan_agrees_with_row_validation(config: Config, rows: list[dict]) -> None:
    assert_agrees(_validator(config, PENALTY_HEADERS), _as_raw(rows, PENALTY_HEADERS))


HEADER_SETS = {
    "absent columns": [
        h
        for h in PENALTY_HEADERS
        if h not in ("CF_NR_WFFF", "CF_YXQ", "CF_SJLYDM", "BZ", "CF_FRDB", "CF_NR_FK")
    ],
    "amounts in 元, an unknown column": [
        *(h if h != "CF_NR_FK" else "罚款金额（元）" for h in PENALTY_HEADERS),
        "自定义列",
    ],
    "types from two columns": [*PENALTY_HEADERS, "处罚类别2"],
    "no USCC column": [h for h in PENALTY_HEADERS if h != "CF_XDR_SHXYM"],
}


@SLOW
@given(rows=penalty_rows(), headers=st.sampled_from(sorted(HEADER_SETS)))
def test_the_column_plan_agrees_under_other_headers(
    config: Config, rows: list[dict], headers: str
) -> None:
    columns = HEADER_SETS[headers]
    for row in rows:
        row["罚款金额（元）"] = row.get("CF_NR_FK", "")
        row["自定义列"] = row.get("BZ", "")
        row["处罚类别2"] = "警告" if row["CF_CFLB"] else ""
    assert_agrees(_validator(config, columns), _as_raw(rows, columns))


@SLOW
@given(rows=penalty_rows(), order=st.sampled_from(["mdy", "dmy"]))
def test_the_column_plan_agrees_with_another_date_order(
    config: Config, rows: list[dict], order: DateOrder
) -> None:
    assert_agrees(_validator(config, PENALTY_HEADERS, order), _as_raw(rows, PENALTY_HEADERS))


CELLS: list[object] = [
    None,
    0,
    1,
    0.2,
    float("nan"),
    float("inf"),
    20000,
    True,
    dt.date(2026, 9, 28),
    dt.datetime(2026, 9, 28, 10, 0),
    ["a", "b"],
    {"a": 1},
    1568131200000,
]


@SLOW
@given(rows=penalty_rows(), data=st.data())
def test_the_column_plan_agrees_on_cells_that_are_not_text(
    config: Config, rows: list[dict], data: st.DataObject
) -> None:
    """Workbook and JSON cells: numbers, dates, None, lists and objects."""
    raw = _as_raw(rows, PENALTY_HEADERS)
    for row in raw:
        if data.draw(st.booleans()):
            for index in data.draw(st.sets(st.integers(0, len(PENALTY_HEADERS) - 1), max_size=3)):
                row.values[index] = data.draw(st.sampled_from(CELLS))
    assert_agrees(_validator(config, PENALTY_HEADERS), raw)


def test_rows_that_do_not_fit_the_header_are_validated_one_by_one(config: Config) -> None:
    raw = _as_raw([penalty(n) for n in range(1, 6)], PENALTY_HEADERS)
    raw[1] = RawRow(3, raw[1].values[:5] + [None] * 16, "has 5 fields, the header has 21")
    raw[3] = RawRow(5, [*raw[3].values, "extra"])
    assert_agrees(_validator(config, PENALTY_HEADERS), raw)


def test_a_sample_export_is_accepted_column_by_column(config: Config) -> None:
    """Clean rows are the common case: all but the out-of-scope ones accepted in bulk."""
    from pipeline.sync.samplegen import penalties

    rows = list(penalties(2000, seed=3))
    validator = _validator(config, PENALTY_HEADERS)
    raw = _as_raw(rows, PENALTY_HEADERS)
    assert_agrees(validator, raw)
    got = ColumnPlan(validator).run(raw)
    scoped = [o for _, o in got.outcomes if o.out_of_scope]
    assert len(got.accepted) + len(scoped) == len(raw)
    assert len(got.accepted) > 0.9 * len(raw)


def test_the_column_plan_agrees_on_a_severe_list(config: Config) -> None:
    from pipeline.sync.samplegen import LIST_HEADERS, severe_list

    rows = list(severe_list(300))
    rows[3]["列入日期"] = "昨天"
    rows[4]["统一社会信用代码"] = ""
    rows[5]["名单名称"] = "控制\x02字符"
    rows[6]["认定部门"] = "哈尔滨市道里区市场监督管理局"
    mapping = build_mapping(LIST_HEADERS, "severe-list", {})
    router = Router(config.departments, config.settings.jurisdiction)
    validator = RowValidator("list", mapping, router)
    assert_agrees(validator, _as_raw(rows, LIST_HEADERS))
    assert len(ColumnPlan(validator).run(_as_raw(rows, LIST_HEADERS)).accepted) > 250


# --------------------------------------------------------------------------- digests, USCC


@given(
    rows=st.lists(
        st.lists(
            st.one_of(st.text(max_size=8), st.sampled_from(["a\x1fb", "\x1f", "", "宝山"])),
            max_size=5,
        ),
        max_size=20,
    )
)
def test_raw_digests_in_bulk_are_the_one_by_one_digests(rows: list[list[str]]) -> None:
    digest = RawDigest("fingerprint")
    assert digest.many(rows) == [digest(row).hex() for row in rows]


def test_raw_digests_in_bulk_tell_types_apart() -> None:
    digest = RawDigest("fingerprint")
    rows: list[list[object]] = [["1", "b"], [1, "b"], [None, "b"], ["None", "b"], ["a"]]
    assert digest.many(rows) == [digest(row).hex() for row in rows]
    assert len(set(digest.many(rows))) == len(rows)


@given(st.lists(st.text(alphabet=ALPHABET, min_size=18, max_size=18), max_size=50))
def test_the_bulk_uscc_check_is_is_clean(codes: list[str]) -> None:
    rng = random.Random(len(codes))
    codes += [make_uscc("".join(rng.choice(ALPHABET) for _ in range(17))) for _ in range(50)]
    codes += ["0" * 18, "1" * 18, "9" * 8 + "0" * 10]
    faults = set(_uscc_faults(codes))
    for i, code in enumerate(codes):
        placeholder = code[1:8] == code[0] * 7
        assert (i in faults) == (not is_clean(code) or placeholder), code


# --------------------------------------------------------------------------- CSV batches


def _rows_both_ways(path: Path, size: int) -> tuple[list[RawRow], list[RawRow]]:
    with read_snapshot(path) as snapshot:
        one_by_one = list(snapshot)
    with read_snapshot(path) as snapshot:
        batches = list(snapshot.batches(size))
    assert all(batches)
    return one_by_one, [row for batch in batches for row in batch]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_a_csv_read_in_batches_gives_the_rows_read_one_by_one(tmp_path: Path, size: int) -> None:
    lines = [
        "某局行政处罚信息公开表",
        ",".join(PENALTY_HEADERS[:4]),
        "a,b,c,d",
        "",
        ",,,",
        "e,f,g",
        "h,i,j,k,",
        "l,m,n,o,p",
        '"q\nr",s,t,u',
        "v,w,x,y",
    ]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one_by_one, batched = _rows_both_ways(path, size)
    assert batched == one_by_one
    assert [r.row_no for r in batched] == [3, 6, 7, 8, 9, 10]
    assert [r.problem is not None for r in batched] == [False, True, False, True, False, False]


def test_title_rows_read_while_looking_for_the_header_come_first(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("标题\n副标题\n第三行\n", encoding="utf-8")
    one_by_one, batched = _rows_both_ways(path, 2)
    assert batched == one_by_one == [RawRow(2, ["副标题"]), RawRow(3, ["第三行"])]


def _error(path: Path, batched: bool) -> str:
    with pytest.raises(InputError) as caught, read_snapshot(path) as snapshot:
        if batched:
            for _ in snapshot.batches(3):
                pass
        else:
            list(snapshot)
    return str(caught.value)


def test_a_csv_error_in_a_batch_names_the_row_the_one_by_one_reader_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.csv"
    huge = "x" * (16 * 1024 * 1024 + 1)  # over the reader's field size limit
    rows = ["a,b", "1,2", "3,4", "5,6", "7,8", f"9,{huge}", "11,12"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert "row 6" in _error(path, batched=True)
    assert _error(path, batched=True) == _error(path, batched=False)
    path.write_bytes(("a,b\n" + "甲,乙\n" * 5).encode("gb18030") + b"\xff\xfe,x\n")
    assert _error(path, batched=True) == _error(path, batched=False)


# --------------------------------------------------------------------------- first load


def _records(engine: Engine) -> list[dict[str, Any]]:
    columns = ["kind", "source", "authority", "decision_no", "decision_key", *SNAPSHOT_FIELDS]
    columns += ["content_hash", "raw_hash", "progress", "willingness", "green_channel"]
    columns += ["market_regulation", "first_seen_on", "vanished_on", "invalid_row_id"]
    table = table_of(Record)
    with engine.connect() as conn:
        rows = conn.execute(
            select(*(table.c[c] for c in columns)).where(table.c.kind == "penalty")
        ).all()
    return sorted((dict(zip(columns, row, strict=True)) for row in rows), key=repr)


def _sync(engine: Engine, config: Config, path: Path) -> dict[str, Any]:
    with read_snapshot(path) as snapshot:
        request = SyncRequest(snapshot, "penalty", "file", NOW)
        body = sync_snapshot(engine, config, request).as_json()
    body.pop("sync_id")
    return body


def test_a_first_load_stores_what_a_sync_through_the_staging_table_stores(
    engine: Engine, upgraded_engine: Engine, config: Config, tmp_path: Path
) -> None:
    """`engine` takes the file as a first load (no record of the kind: straight into
    records); `upgraded_engine` holds one unrelated record first, so the same file goes
    through the staging table. Every stored value is the same."""
    rows = [penalty(n) for n in range(1, 40)]
    rows[3]["CF_NR_FK"] = ""  # None in some rows of a column
    rows[4]["CF_XDR_SHXYM"] = rows[4]["CF_XDR_SHXYM"][:17] + "0"  # a warning
    rows[5]["BZ"] = "备注"  # a raw extra
    rows[6]["CF_JDRQ"] = "2026-13-01"  # quarantined
    rows[7]["CF_WSH"] = rows[8]["CF_WSH"]  # a duplicate
    rows[9]["CF_NR"] = "没收违法所得13.07万元，罚款53.07万元"
    rows[9]["CF_NR_FK"] = ""
    path = write_rows(tmp_path / "a.csv", rows)
    first = _sync(engine, config, path)

    with upgraded_engine.begin() as conn:
        conn.execute(insert(table_of(Record)), [penalty_record()])
    staged = _sync(upgraded_engine, config, path)
    assert first == staged
    assert (first["added"], first["quarantined"], first["warnings"]) == (37, 2, 1)
    got, expected = _records(engine), _records(upgraded_engine)
    assert got == [r for r in expected if r["decision_no"] != "其他文号"]
    with engine.connect() as conn:
        changes = conn.execute(select(RecordChange.change)).scalars().all()
    assert changes == ["added"] * 37


def penalty_record() -> dict[str, Any]:
    """An unrelated record of the same kind, from another source."""
    return {
        "kind": "penalty",
        "authority": TAX,
        "decision_no": "其他文号",
        "decision_key": "其他文号",
        "entity_name": "其他公司",
        "decision_date": dt.date(2020, 1, 1),
        "content_hash": "0" * 32,
        "department_code": "tax",
        "source": "other",
        "first_sync_id": 0,
        "last_sync_id": 0,
        "first_seen_on": dt.date(2020, 1, 1),
        "progress": 0,
        "willingness": "unknown",
        "green_channel": False,
        "market_regulation": False,
    }


def test_a_first_load_keeps_the_schema_and_refuses_an_empty_snapshot(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    empty = write_rows(tmp_path / "empty.csv", [penalty(1, CF_JDRQ="昨天")])
    body = _sync(engine, config, empty)
    assert body["refused"] and body["added"] == 0
    body = _sync(engine, config, write_rows(tmp_path / "a.csv", [penalty(1), penalty(2)]))
    assert body["added"] == 2
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            indexes = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
            )
        else:
            indexes = conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'records'"
            )
        names = {n for (n,) in indexes}
    assert {"ix_records_uscc", "ix_records_department_status"} <= names


def test_updates_without_update_from_give_the_same_records_and_history(
    engine: Engine,
    upgraded_engine: Engine,
    config: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite before 3.33 has no UPDATE … FROM: records are linked, updated and re-keyed
    row by row there, to the same end."""
    rows = [penalty(n) for n in range(1, 30)]
    first = write_rows(tmp_path / "a.csv", rows)
    edited = [penalty(3, CF_NR_FK="0.5"), *rows[3:20], penalty(40), penalty(25, CF_XDR_MC="新名")]
    second = write_rows(tmp_path / "b.csv", edited)
    bodies = []
    for db, patched in ((engine, False), (upgraded_engine, True)):
        with monkeypatch.context() as m:
            if patched:
                m.setattr("pipeline.sync.snapshot._update_from", lambda conn: False)
            _sync(db, config, first)
            bodies.append(_sync(db, config, second))
    assert bodies[0] == bodies[1]
    assert (bodies[0]["updated"], bodies[0]["added"], bodies[0]["vanished"]) == (2, 1, 10)
    assert _records(engine) == _records(upgraded_engine)
    history = []
    for db in (engine, upgraded_engine):
        with db.connect() as conn:
            history.append(
                conn.execute(
                    select(
                        RecordChange.record_id, RecordChange.change, RecordChange.old_values
                    ).order_by(RecordChange.id)
                ).all()
            )
    assert history[0] == history[1]


# --------------------------------------------------------------------------- CSV read as bytes

FIELD_TEXT = st.one_of(
    st.sampled_from(
        ["", " ", "宝山", "a,b", 'say "hi"', "two\nlines", "cr\rline", "crlf\r\nx", ",,"]
    ),
    st.text(alphabet='ab 宝,"\r\n\t', max_size=6),
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """A CSV file as bytes (any line ends, quoting, blank lines, titles) and its encoding."""
    import csv as csv_module
    import io

    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    width = draw(st.integers(1, 4))
    out = io.StringIO(newline="")
    quoting = draw(st.sampled_from([csv_module.QUOTE_MINIMAL, csv_module.QUOTE_ALL]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv_module.writer(out, quoting=quoting, lineterminator=terminator)
    if draw(st.booleans()):
        out.write("标题" + terminator)
    writer.writerow([f"列{i}" for i in range(width)])
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            out.write(terminator)  # a blank line
        elif kind == 1:
            out.write("," * width + terminator)  # only commas
        elif kind == 2:
            out.write(draw(st.text(alphabet='ab,"\r\n', max_size=8)) + terminator)  # anything
        else:
            cells = draw(st.lists(FIELD_TEXT, min_size=max(1, width - 1), max_size=width + 1))
            writer.writerow(cells)
    return out.getvalue().encode(encoding), encoding


def _text_reader(path: Path, encoding: str) -> tuple[list[str], list[RawRow]]:
    """The text reader (csv.reader over the decoded file): what the byte reader must give."""
    from pipeline.sync.sources.files import _csv_records, _csv_rows, _header_names, _header_row

    with path.open(encoding=encoding, newline="") as stream:
        records, header = _header_row(_csv_records(stream, path, encoding, str(path)))
        headers = _header_names(header)
        return headers, list(_csv_rows(records, len(headers)))


def _outcome(read: Any) -> tuple[str, Any]:
    try:
        return "ok", read()
    except InputError as exc:
        return "error", str(exc)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(file=csv_files(), size=st.sampled_from([1, 2, 5, 1000]))
def test_a_csv_read_as_bytes_gives_what_csv_reader_gives(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, str], size: int
) -> None:
    data, encoding = file
    path = tmp_path_factory.mktemp("csv") / "a.csv"
    path.write_bytes(data)

    def by_bytes() -> tuple[list[str], list[RawRow], list[RawRow]]:
        with read_snapshot(path, encoding=encoding) as snapshot:
            one_by_one = list(snapshot)
        with read_snapshot(path, encoding=encoding) as snapshot:
            batched = [row for batch in snapshot.batches(size) for row in batch]
            return snapshot.headers, one_by_one, batched

    expected = _outcome(lambda: _text_reader(path, encoding))
    got = _outcome(by_bytes)
    if expected[0] == "error" or got[0] == "error":
        assert got == expected
        return
    headers, one_by_one, batched = got[1]
    assert (headers, one_by_one) == expected[1]
    assert batched == one_by_one


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(file=csv_files())
def test_a_csv_record_has_the_same_bytes_whichever_way_it_is_read(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, str]
) -> None:
    """A row's bytes (its fingerprint) do not depend on its neighbours: with or without a
    quoted line in the same batch, one line or many at a time."""
    data, encoding = file
    path = tmp_path_factory.mktemp("csv") / "a.csv"
    path.write_bytes(data)
    seen: list[dict[int, bytes]] = []
    for size in (1, 3, 1000):
        try:
            with read_snapshot(path, encoding=encoding) as snapshot:
                records: dict[int, bytes] = {}
                for batch in snapshot.row_batches(size):
                    if batch.records is not None:
                        records.update(zip(batch.row_nos, batch.records, strict=True))
                    parsed = batch.rows(list(range(len(batch))))
                    assert parsed == batch.rows() and [r.row_no for r in parsed] == batch.row_nos
        except InputError:
            return
        seen.append(records)
    assert seen[0] == seen[1] == seen[2]


def test_a_decoding_error_read_as_bytes_names_the_row_the_text_reader_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        "a,b\n甲,乙\n".encode("gb18030") * 3 + b"\xff\xfe,x\n" + "丙,丁\n".encode("gb18030")
    )
    with pytest.raises(InputError) as caught, read_snapshot(path, encoding="gb18030") as snapshot:
        list(snapshot)
    expected = _outcome(lambda: _text_reader(path, "gb18030"))
    assert expected == ("error", str(caught.value))
    assert "row 7" in str(caught.value)


def test_a_file_that_fails_after_rows_were_written_leaves_nothing(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    """A decoding error after the first batches were written (PostgreSQL: into an open
    COPY): the sync fails naming the row, nothing is kept, the failure is recorded."""
    from pipeline.db.models import SyncRun

    path = tmp_path / "a.csv"
    write_rows(path, [penalty(n) for n in range(1, 12_001)], encoding="gb18030")
    path.write_bytes(path.read_bytes() + b"\xff\xfe,x\n")
    with pytest.raises(InputError, match="not valid gb18030 near row 12002"):
        _sync(engine, config, path)
    with engine.connect() as conn:
        assert conn.execute(select(table_of(Record).c.id)).first() is None
        runs = conn.execute(select(SyncRun.status)).scalars().all()
    assert runs == ["failed"]
    assert _sync(engine, config, write_rows(tmp_path / "b.csv", [penalty(1)]))["added"] == 1
