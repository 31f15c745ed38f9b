"""docs/数据格式.md, generated from the code: the header aliases, the date, amount and
decision-number forms (each example run through its parser), the identity codes, the
out-of-scope reasons and the file formats the sync accepts. It cannot drift:
tests/test_formats_doc.py fails when the file differs from `render()`.

    python -m pipeline.sync.formats_doc            # rewrite docs/数据格式.md
    python -m pipeline.sync.formats_doc --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.domain.routing import OUT_OF_SCOPE
from pipeline.domain.uscc import CODE_KINDS
from pipeline.sync.normalize import (
    AMOUNT_EXAMPLES,
    AMOUNT_REFUSED,
    DATE_EXAMPLES,
    DATE_REFUSED,
    DECISION_EXAMPLES,
    EMPTY_MARKERS,
    decision_key,
    parse_amount_wan,
    parse_confiscated_wan,
    parse_date,
)
from pipeline.sync.sources.fields import (
    ALIASES,
    FALLBACK_ALIASES,
    KNOWN_EXTRAS,
    PERSONAL_FIELDS,
    REQUIRED,
    Kind,
)
from pipeline.sync.sources.files import _FORMATS

DOC = Path(__file__).resolve().parents[2] / "docs" / "数据格式.md"


def render() -> str:
    parts = [
        "# 快照数据格式 / Snapshot formats",
        "",
        "> 本文件由代码生成（`python -m pipeline.sync.formats_doc`），请勿手改；"
        "测试在它与代码不一致时失败。/ Generated from the code; do not edit by hand "
        "(tests/test_formats_doc.py fails when it is stale).",
        "",
        "每个数据源的实际对应关系用 `credit-repair sources check NAME` 查看；"
        "未识别的列可在 settings.yaml 的 `sources[].field_map` 中指定。/ "
        "`credit-repair sources check NAME` shows what a source's columns become; map "
        "other headers in `sources[].field_map`.",
        "",
        *_files(),
        *_headers(),
        *_dates(),
        *_amounts(),
        *_decisions(),
        *_codes(),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    def cell(value: object) -> str:
        text = "（空 empty）" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _code(text: object) -> str:
    return f"`{text}`" if isinstance(text, str) else f"`{text!r}`"


def _files() -> list[str]:
    readers = {
        "csv": "csv（UTF-8、UTF-8 BOM、GB18030/GBK 自动识别；引号内换行、CRLF、末尾空列均可）",
        "xlsx": "python-calamine（表格范围不超过 files.sheet_max_cells）或 openpyxl 逐行读取；先做压缩包检查",
        "xls": "python-calamine；先按 BIFF 记录检查表格范围",
        "ods": "python-calamine；先做压缩包检查和表格范围检查",
        "json": "ijson 流式读取；列表为文档本身、records_key 指定的键或第一个列表",
    }
    rows = [(suffix, kind, readers[kind]) for suffix, kind in _FORMATS.items()]
    return [
        "## 文件格式 / File formats",
        "",
        "表头之上只有一个单元格的标题行（最多 10 行）会被跳过。/ Title rows of one cell above "
        "the header (up to 10) are skipped.",
        "",
        *_table(("后缀 suffix", "格式 format", "读取 reader"), rows),
    ]


def _headers() -> list[str]:
    out = [
        "## 表头别名 / Header aliases",
        "",
        "比较表头时忽略全角/半角、空格、大小写、开头的 `*`、结尾的冒号和结尾括号里的说明"
        "（`处罚金额（万元）`、`行政相对人代码_1（统一社会信用代码）`）；括号写 `元` 的金额列"
        "按元读取。两列对应同一字段时用第一列。/ Headers are compared ignoring width, "
        "spaces, case, a leading `*`, a trailing colon and a trailing bracket; an amount "
        "column whose bracket says 元 is read in 元. Of two columns for one field the first "
        "is used.",
        "",
    ]
    titles = {"penalties": "行政处罚 / penalties", "severe-list": "严重失信名单 / severe lists"}
    kinds: tuple[Kind, ...] = ("penalties", "severe-list")
    for kind in kinds:
        rows = []
        for name, aliases in ALIASES[kind].items():
            fallback = "、".join(FALLBACK_ALIASES[kind].get(name, ())) or "-"
            notes = []
            if name in REQUIRED[kind]:
                notes.append("必填 required")
            if name in PERSONAL_FIELDS:
                notes.append("只用于识别自然人，不保存 read to tell a natural person, never stored")
            rows.append(
                (
                    f"`{name}`",
                    "、".join(f"`{a}`" for a in aliases),
                    fallback,
                    "；".join(notes) or "-",
                )
            )
        out += [f"### {titles[kind]}", ""]
        out += _table(
            ("字段 field", "表头 headers", "备用（无别名列时）fallback", "说明 notes"), rows
        )
    extras = [(f"`{h}`", what) for h, what in KNOWN_EXTRAS.items()]
    out += ["### 已识别、原样保留的列 / Recognised columns kept as raw extras", ""]
    out += _table(("表头 header", "内容 what"), extras)
    return out


def _dates() -> list[str]:
    rows = [
        (_code(value), order, parse_date(value, order), note)
        for value, order, note in DATE_EXAMPLES
    ]
    refused = [(_code(value), _refusal(parse_date, value), why) for value, why in DATE_REFUSED]
    markers = "、".join(f"`{m}`" for m in sorted(EMPTY_MARKERS))
    return [
        "## 日期 / Dates",
        "",
        f"视为空值 / read as empty: {markers}。年份在后的日期（`03/29/2018`）无法区分月和日，"
        "只有数据源声明 `date_order: mdy`（或 `dmy`）时才读取。/ A year-last date is read "
        "only when the source declares its `date_order`.",
        "",
        *_table(("单元格 cell", "date_order", "读作 parsed", "说明 note"), rows),
        "拒绝（该行隔离并说明原因）/ refused (the row is quarantined with the reason):",
        "",
        *_table(("单元格 cell", "原因 reason", "说明 note"), refused),
    ]


def _amounts() -> list[str]:
    parsers = {"fine_amount": parse_amount_wan, "confiscated_amount": parse_confiscated_wan}
    rows = [
        (
            _code(value),
            field,
            {"wan": "万元", "yuan": "元"}[unit],
            parsers[field](value, unit),
            note,
        )
        for value, field, unit, note in AMOUNT_EXAMPLES
    ]
    refused = [
        (_code(value), _refusal(parse_amount_wan, value), why) for value, why in AMOUNT_REFUSED
    ]
    return [
        "## 金额 / Amounts",
        "",
        "金额以万元保存。金额列为空时，从同一行的金额列文字或处罚内容（CF_NR、处罚结果、"
        "行政处罚决定）中读取：`罚款…` 为罚款，`没收…` 为没收金额。不含金额的处罚结果"
        "（警告、取消任职资格）不是错误。/ Amounts are kept in 万元. An empty amount is read "
        "from the row's texts (the amount columns' words, then 处罚内容): 罚款… is the fine, "
        "没收… the confiscation; a result with no amount of money is no error.",
        "",
        *_table(
            (
                "单元格 cell",
                "字段 field",
                "列的单位 column unit",
                "读作（万元）parsed",
                "说明 note",
            ),
            rows,
        ),
        "拒绝 / refused:",
        "",
        *_table(("单元格 cell", "原因 reason", "说明 note"), refused),
    ]


def _refusal(parser: object, value: object) -> str:
    try:
        parser(value)  # type: ignore[operator]
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"{value!r} is documented as refused but parses")


def _decisions() -> list[str]:
    rows = [(_code(text), f"`{decision_key(text)}`") for text in DECISION_EXAMPLES]
    return [
        "## 文号 / Decision numbers",
        "",
        "以下写法是同一个处罚决定：比对用规范化的键（全角转半角、去空格、年份括号统一为〔〕、"
        "序号去掉“第”和前导零），显示仍用公布的原文。/ These are one decision: records are "
        "matched by the normalised key, and shown as published.",
        "",
        *_table(("公布的文号 as published", "键 key"), rows),
    ]


def _codes() -> list[str]:
    return [
        "## 统一社会信用代码列中的其他代码 / Other codes in the USCC column",
        "",
        "这些代码被识别并按类计数（`sync --json` 的 `identity_codes`），不按格式错误隔离；"
        "除被空格分开的代码外，该行没有统一社会信用代码，按“无统一社会信用代码”计入不在辖区。"
        "/ Recognised and counted, never quarantined as a malformed USCC.",
        "",
        *_table(("代码 code", "含义 meaning"), [(f"`{k}`", v) for k, v in CODE_KINDS.items()]),
        "## 不在辖区的原因 / Out-of-scope reasons",
        "",
        "`sync --json` 的 `out_of_scope_reasons`。自然人的记录不隔离、不保存、不显示。"
        "/ A natural person's row is never quarantined, kept or shown.",
        "",
        *_table(("原因 reason", "含义 meaning"), [(f"`{k}`", v) for k, v in OUT_OF_SCOPE.items()]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python -m pipeline.sync.formats_doc", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
