"""Realistic generated snapshots: the quick-start sample, test fixtures, benchmarks.

Deterministic for a seed. Rows use the standard 双公示 field codes (CF_*) and are
streamed, so a 1,000,000-row export costs no memory. The one real record of the
domain notes (双鸭山智慧城市运营有限公司, 市场【2019】1号) is always included.

    python -m pipeline.sync.samplegen penalties --rows 1000000 --out bench.csv --encoding gb18030
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.domain.uscc import make_uscc

PENALTY_HEADERS = [
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
    "BZ",
]
LIST_HEADERS = [
    "名单名称",
    "企业名称",
    "统一社会信用代码",
    "认定部门",
    "认定文书号",
    "列入日期",
    "列入原因",
]

REAL_RECORD = {
    "CF_WSH": "市场【2019】1号",
    "CF_XDR_MC": "双鸭山智慧城市运营有限公司",
    "CF_XDR_LB": "法人及非法人组织",
    "CF_XDR_SHXYM": "91230500MA1B3N1N2M",
    "CF_FRDB": "",
    "CF_WFXW": "违反治安管理",
    "CF_SY": "未按规定履行安全管理义务",
    "CF_YJ": "《中华人民共和国治安管理处罚法》",
    "CF_CFLB": "罚款",
    "CF_NR": "罚款人民币贰仟元整",
    "CF_NR_FK": "0.2",
    "CF_NR_WFFF": "",
    "CF_NR_ZKDX": "",
    "CF_JDRQ": "2019-10-10",
    "CF_YXQ": "",
    "CF_GSJZQ": "",
    "CF_CFJG": "双鸭山市公安局",
    "CF_CFJGDM": "11230500001755309F",
    "CF_SJLY": "双鸭山市公安局",
    "CF_SJLYDM": "11230500001755309F",
    "BZ": "",
}

# (department authority, its USCC, typical violations) — matches config/departments.yaml
AUTHORITIES = [
    (
        "国家税务总局双鸭山市宝山区税务局",
        "112305060000000193",
        ["未按期办理纳税申报", "未按规定开具发票"],
        "税收",
    ),
    (
        "宝山区应急管理局",
        "11230506000000027X",
        ["未按规定开展安全生产教育培训", "安全生产事故隐患未及时排除"],
        "安全生产",
    ),
    (
        "宝山区市场监督管理局",
        "11230506000000035Q",
        ["销售不符合食品安全标准的食品", "未按规定公示年度报告", "虚假广告"],
        "市场监管",
    ),
    (
        "双鸭山市生态环境局宝山分局",
        "11230506000000043K",
        ["超标排放大气污染物", "未批先建"],
        "生态环境",
    ),
    (
        "宝山区住房和城乡建设局",
        "11230506000000051E",
        ["未取得施工许可证擅自施工", "违反工程质量管理规定"],
        "工程质量",
    ),
    (
        "宝山区消防救援大队",
        "1123050600000006X6",
        ["消防设施未保持完好有效", "占用疏散通道"],
        "消防",
    ),
]
OUTSIDE_AUTHORITIES = [
    ("哈尔滨市道里区市场监督管理局", "112301020000009917", ["虚假宣传"], "市场监管")
]
PENALTY_TYPES = [
    ("罚款", 55),
    ("警告;罚款", 15),
    ("警告", 8),
    ("通报批评", 3),
    ("没收违法所得;罚款", 7),
    ("责令停产停业;罚款", 4),
    ("吊销许可证件", 2),
    ("限制从业;罚款", 1),
    ("罚款、没收非法财物", 5),
]
NAME_HEADS = [
    "宝山",
    "双鸭山",
    "鑫达",
    "恒泰",
    "北疆",
    "龙煤",
    "兴旺",
    "瑞丰",
    "宏图",
    "金顺",
    "安泰",
    "德润",
]
NAME_TRADES = [
    "商贸",
    "建筑工程",
    "煤业",
    "食品",
    "餐饮",
    "物流",
    "机械制造",
    "建材",
    "医药",
    "环保科技",
]
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code(body: str) -> str:
    """An 8-digit organisation code body with its GB 11714 check character."""
    rest = 11 - sum(int(c) * w for c, w in zip(body, ORG_WEIGHTS, strict=True)) % 11
    return body + ("X" if rest == 10 else "0" if rest == 11 else str(rest))


def entity_uscc(rng: random.Random, area: str, prefix: str = "91") -> str:
    return make_uscc(prefix + area + org_code(f"{rng.randrange(10**8):08d}"))


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def _entity(rng: random.Random, i: int, area: str) -> tuple[str, str, str]:
    name = f"双鸭山市{rng.choice(NAME_HEADS)}{rng.choice(NAME_TRADES)}有限公司"
    if i % 9 == 0:
        return (
            f"宝山区{rng.choice(NAME_HEADS)}{rng.choice(NAME_TRADES)}店",
            "个体工商户",
            entity_uscc(rng, area, "92"),
        )
    return (
        f"{name[:-4]}{i % 97}号有限公司" if i % 5 == 0 else name,
        "法人及非法人组织",
        entity_uscc(rng, area),
    )


def penalty_row(
    rng: random.Random, i: int, start: dt.date, days: int, out_of_scope: float
) -> dict[str, str]:
    outside = rng.random() < out_of_scope
    authority, auth_uscc, violations, _sector = rng.choice(
        OUTSIDE_AUTHORITIES if outside else AUTHORITIES
    )
    name, entity_type, uscc = _entity(rng, i, "230502" if outside else "230506")
    types = _weighted(rng, PENALTY_TYPES)
    fine = "" if "罚款" not in types else f"{rng.choice([0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20])}"
    decided = start + dt.timedelta(days=rng.randrange(days))
    violation = rng.choice(violations)
    return {
        "CF_WSH": f"宝{authority[-3:-1]}罚〔{decided.year}〕{i + 1}号",
        "CF_XDR_MC": name,
        "CF_XDR_LB": entity_type,
        "CF_XDR_SHXYM": uscc,
        "CF_FRDB": rng.choice("张王李赵刘陈杨黄")
        + rng.choice(["伟", "芳", "强", "磊", "静", "军"]),
        "CF_WFXW": violation,
        "CF_SY": f"经查，当事人{violation}。",
        "CF_YJ": "依据相关法律法规第X条",
        "CF_CFLB": types,
        "CF_NR": f"{types.replace(';', '、')}"
        + (f"人民币{float(fine) * 10000:.0f}元" if fine else ""),
        "CF_NR_FK": fine,
        "CF_NR_WFFF": "",
        "CF_NR_ZKDX": "",
        "CF_JDRQ": decided.isoformat(),
        "CF_YXQ": "",
        "CF_GSJZQ": "",
        "CF_CFJG": authority,
        "CF_CFJGDM": auth_uscc,
        "CF_SJLY": authority,
        "CF_SJLYDM": auth_uscc,
        "BZ": "",
    }


def penalties(
    rows: int,
    seed: int = 7,
    start: dt.date = dt.date(2021, 1, 1),
    end: dt.date = dt.date(2026, 11, 20),
    out_of_scope: float = 0.05,
) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    days = (end - start).days
    yield REAL_RECORD
    for i in range(rows - 1):
        yield penalty_row(rng, i, start, days, out_of_scope)


def severe_list(rows: int, seed: int = 11) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    lists = [
        ("安全生产严重失信主体名单", "宝山区应急管理局", "发生较大生产安全事故"),
        (
            "严重违法失信企业名单",
            "宝山区市场监督管理局",
            "被列入经营异常名录届满3年仍未履行相关义务",
        ),
        ("重大税收违法失信主体名单", "国家税务总局双鸭山市宝山区税务局", "虚开增值税专用发票"),
    ]
    for i in range(rows):
        list_name, authority, reason = lists[i % len(lists)]
        name, _type, uscc = _entity(rng, i + 1, "230506")
        listed = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1400))
        yield {
            "名单名称": list_name,
            "企业名称": name,
            "统一社会信用代码": uscc,
            "认定部门": authority,
            "认定文书号": f"宝认〔{listed.year}〕{i + 1}号",
            "列入日期": listed.isoformat(),
            "列入原因": reason,
        }


CONTACT_HEADERS = ["统一社会信用代码", "联系人", "联系电话", "电子邮箱"]


def contacts_for(rows: Iterable[dict[str, str]], seed: int = 3) -> Iterator[dict[str, str]]:
    """Contacts for the entities of a snapshot: most reachable by e-mail and SMS, some by one, a few by none."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for row in rows:
        code = row.get("CF_XDR_SHXYM") or row.get("统一社会信用代码") or ""
        if not code or code in seen:
            continue
        seen.add(code)
        roll = rng.random()
        if roll < 0.1:
            continue  # nobody to write to: a manual delivery
        phone = f"139{rng.randrange(10**8):08d}" if roll < 0.8 else ""
        email = f"contact{len(seen)}@example.com" if roll < 0.6 or roll >= 0.8 else ""
        yield {
            "统一社会信用代码": code,
            "联系人": rng.choice("张王李赵刘陈") + rng.choice(["经理", "会计", "女士", "先生"]),
            "联系电话": phone,
            "电子邮箱": email,
        }


def write_csv(
    path: Path, headers: list[str], rows: Iterable[dict[str, str]], encoding: str = "utf-8-sig"
) -> int:
    count = 0
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=headers)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=["penalties", "severe-list", "contacts"])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--encoding", default="utf-8-sig")
    args = parser.parse_args()
    if args.what == "penalties":
        n = write_csv(args.out, PENALTY_HEADERS, penalties(args.rows, args.seed), args.encoding)
    elif args.what == "severe-list":
        n = write_csv(args.out, LIST_HEADERS, severe_list(args.rows, args.seed), args.encoding)
    else:  # contacts for the entities of the default penalties and severe-list samples
        rows = [*penalties(args.rows, 7), *severe_list(max(args.rows // 20, 12), 11)]
        n = write_csv(args.out, CONTACT_HEADERS, contacts_for(rows, args.seed), args.encoding)
    print(f"wrote {n} rows to {args.out}")


if __name__ == "__main__":
    main()
