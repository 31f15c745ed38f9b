"""Header → field mapping for 双公示 行政处罚 exports and severe-dishonesty list snapshots.

Headers come as standard field codes (current or 2016) or as Chinese names (domain.md §4).
Matching ignores width (NFKC), whitespace, letter case and a trailing unit in brackets,
so `罚款金额（万元）` and `cf_nr_fk` both find `fine_amount`. Unmapped columns are kept
as raw extras under their original header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pipeline.errors import ConfigError

Kind = Literal["penalties", "severe-list"]
JOINED_FIELD = "penalty_types"
"""The one field that may come from several columns (CF_CFLB1 + CF_CFLB2), joined by ';'."""

# field → aliases; the first two aliases describe the field in messages. Headers are
# compared by `header_key`: width, spaces, case, a leading `*` and a trailing bracket
# (`罚款金额（万元）`, `行政相对人代码_1（统一社会信用代码）`) do not matter.
PENALTY_ALIASES: dict[str, tuple[str, ...]] = {
    "decision_no": (
        "CF_WSH",
        "行政处罚决定书文号",
        "处罚决定书文号",
        "决定书文号",
        "行政处罚决定文书号",
        "文书号",
    ),
    "entity_name": (
        "CF_XDR_MC",
        "行政相对人名称",
        "当事人名称",
        "单位名称",
        "被处罚单位名称",
    ),
    "entity_type": ("CF_XDR_LB", "行政相对人类别", "当事人类别"),
    "uscc": (
        "CF_XDR_SHXYM",
        "统一社会信用代码",
        "CF_XDR_SHDM",
        "行政相对人代码_1",
        "社会信用代码",
    ),
    "legal_rep": (
        "CF_FRDB",
        "法定代表人",
        "CF_FR",
        "法定代表人姓名",
        "法定代表人(负责人)",
        "单位法定代表人(主要负责人)姓名",
    ),
    "violation_type": ("CF_WFXW", "违法行为类型", "处罚名称"),
    "facts": ("CF_SY", "违法事实", "处罚事由", "主要违法违规事实", "案由"),
    "basis": ("CF_YJ", "处罚依据", "行政处罚依据"),
    "penalty_types": ("CF_CFLB", "处罚类别", "CF_CFLB1", "CF_CFLB2", "处罚类别1", "处罚类别2"),
    "penalty_content": ("CF_NR", "处罚内容", "CF_JG", "处罚结果", "行政处罚决定", "处罚决定"),
    "fine_amount": ("CF_NR_FK", "罚款金额", "处罚金额"),
    "confiscated_amount": ("CF_NR_WFFF", "没收金额", "没收违法所得、没收非法财物的金额"),
    "license_info": ("CF_NR_ZKDX", "暂扣或吊销证照名称及编号"),
    "decision_date": ("CF_JDRQ", "处罚决定日期", "作出处罚决定的日期", "处罚日期", "决定日期"),
    "valid_until": ("CF_YXQ", "处罚有效期", "处罚截止期"),
    "publish_until": ("CF_GSJZQ", "公示截止期"),
    "authority": (
        "CF_CFJG",
        "处罚机关",
        "CF_XZJG",
        "作出处罚决定的机关名称",
        "处罚机关名称",
    ),
    "authority_uscc": ("CF_CFJGDM", "处罚机关统一社会信用代码"),
    "data_source": ("CF_SJLY", "数据来源单位"),
    "data_source_uscc": ("CF_SJLYDM", "数据来源单位统一社会信用代码"),
    "severity": ("失信严重程度",),
    "publication_date": ("公示日期",),
    "industry": ("行业",),
    "person_name": ("个人姓名", "当事人姓名"),
    "person_id": (
        "CF_XDR_ZJHM",
        "证件号码",
        "行政相对人代码_5",
        "居民身份证号",
        "身份证号码",
        "身份证号",
    ),
    "legal_rep_id": ("CF_FR_ZJHM", "法定代表人证件号码", "法定代表人身份证号"),
}
SEVERE_LIST_ALIASES: dict[str, tuple[str, ...]] = {
    "list_name": ("名单名称",),
    "entity_name": ("企业名称", "主体名称", "市场主体名称", "行政相对人名称", "CF_XDR_MC"),
    "entity_type": ("主体类别", "行政相对人类别", "CF_XDR_LB"),
    "uscc": ("统一社会信用代码", "CF_XDR_SHXYM"),
    "authority": ("认定部门", "列入机关", "认定机关"),
    "decision_no": ("认定文书号", "决定书文号", "处罚/判决决定书文号", "处罚决定书文号"),
    "decision_date": ("列入日期", "认定日期"),
    "list_reason": ("列入原因", "失信原因"),
    "severity": ("失信严重程度",),
    "person_name": ("个人姓名",),
    "person_id": ("证件号码", "身份证号码", "身份证号"),
}
ALIASES: dict[Kind, dict[str, tuple[str, ...]]] = {
    "penalties": PENALTY_ALIASES,
    "severe-list": SEVERE_LIST_ALIASES,
}
FALLBACK_ALIASES: dict[Kind, dict[str, tuple[str, ...]]] = {
    "penalties": {
        "entity_name": ("COMP_NAME",),
        "decision_date": ("处罚生效期",),
        "data_source": ("CREATE_DEPT_NAME",),
    },
    "severe-list": {"entity_name": ("COMP_NAME",)},
}
"""Headers used for a field only when no column carries one of its aliases: the 双鸭山
platform's JSON names the company COMP_NAME (and has no CF_XDR_MC); a 2016 export without
处罚决定日期 has its 处罚生效期."""
PERSONAL_FIELDS = frozenset({"person_name", "person_id", "legal_rep_id"})
"""Read to tell a natural person (自然人) from an organisation, never stored, never shown
(`pipeline.sync.rows`): a person's name and identity card numbers."""
KNOWN_EXTRAS: dict[str, str] = {
    "RESOURCE_ID": "the 双鸭山 platform's record id",
    "CREATE_TIME": "the 双鸭山 platform's record time",
    "CF_XDR_GSZC": "工商注册号",
    "CF_XDR_ZZJG": "组织机构代码",
    "CF_XDR_SWDJ": "税务登记号",
    "CF_XDR_SYDW": "事业单位证书号",
    "CF_XDR_SHZZ": "社会组织登记证号",
    "CF_XDR_ZJLX": "证件类型",
    "CF_FR_ZJLX": "法定代表人证件类型",
    "行政相对人代码_2": "组织机构代码 (2016)",
    "行政相对人代码_3": "工商登记码 (2016)",
    "行政相对人代码_4": "税务登记号 (2016)",
    "DFBM": "地方编码 (2016)",
    "SJC": "数据更新时间戳 (2016)",
    "BZ": "备注",
    "备注": "备注",
    "当前状态": "当前状态 (2016)",
    "序号": "row number",
}
"""Columns recognised but kept as they are, as raw extras of the record (`raw`)."""
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "penalties": ("decision_no", "entity_name", "decision_date", "authority"),
    "severe-list": ("entity_name", "authority", "decision_no", "decision_date"),
}
_TRAILING_UNIT = re.compile(r"(?<=.)\(([^()]*)\)$")
_DECORATION = re.compile(r"^[*＊]+|[:：]$")
AMOUNT_FIELDS = ("fine_amount", "confiscated_amount")


def header_key(text: str) -> str:
    """The form headers are compared in: NFKC, no whitespace, upper case, no `(万元)`, no
    leading `*` (a template's required mark) or trailing colon."""
    key = _DECORATION.sub("", "".join(unicodedata.normalize("NFKC", text).split()).upper())
    return _TRAILING_UNIT.sub("", key)


def header_unit(text: str) -> str | None:
    """The unit a header's trailing bracket names: `元` for `罚款金额（元）`, else None."""
    found = _TRAILING_UNIT.search("".join(unicodedata.normalize("NFKC", text).split()))
    unit = found.group(1) if found else None
    return unit if unit in ("元", "万元", "人民币元", "单位:元", "单位:万元") else None


def _lookup(aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {header_key(a): name for name, names in aliases.items() for a in names}


_LOOKUP: dict[Kind, dict[str, str]] = {kind: _lookup(ALIASES[kind]) for kind in ALIASES}
_FALLBACK: dict[Kind, dict[str, str]] = {kind: _lookup(FALLBACK_ALIASES[kind]) for kind in ALIASES}
_KNOWN_EXTRAS = frozenset(header_key(h) for h in KNOWN_EXTRAS)


def is_known_extra(header: str) -> bool:
    """A column recognised and kept as a raw extra (`KNOWN_EXTRAS`)."""
    return header_key(header) in _KNOWN_EXTRAS


def describe_field(name: str, kind: Kind) -> str:
    """E.g. "decision_no (CF_WSH / 行政处罚决定书文号)", for missing-column messages."""
    return f"{name} ({' / '.join(ALIASES[kind][name][:2])})"


UNMAPPED = "-"
"""A `field_map` target that keeps a column as a raw extra (e.g. a repeated header's
second column: `"CF_XDR_MC #2": "-"`)."""


@dataclass(frozen=True)
class HeaderMapping:
    """For each column: its canonical field, or None when it is kept as a raw extra."""

    kind: Kind
    headers: tuple[str, ...]
    fields: tuple[str | None, ...]
    repeated: tuple[tuple[int, int, str], ...] = ()
    """(first column, second column, field), 0-based: one header name given twice, both
    mapped to the field. Which one is meant cannot be told: the file is refused."""
    _singles: list[tuple[int, str]] = field(init=False, repr=False, compare=False)
    _joined: list[int] = field(init=False, repr=False, compare=False)
    _extras: list[tuple[int, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed column plans: `apply` runs once per row of a million-row file.
        singles = [(i, f) for i, f in enumerate(self.fields) if f and f != JOINED_FIELD]
        joined = [i for i, f in enumerate(self.fields) if f == JOINED_FIELD]
        extras = [(i, k) for i, k in enumerate(_raw_keys(self.headers)) if self.fields[i] is None]
        object.__setattr__(self, "_singles", singles)
        object.__setattr__(self, "_joined", joined)
        object.__setattr__(self, "_extras", extras)

    def field_of(self, header: str) -> str | None:
        return self.fields[self.headers.index(header)]

    @property
    def amount_units(self) -> dict[str, Literal["wan", "yuan"]]:
        """The amount fields whose column's header says 元 (`罚款金额（元）`): "yuan"."""
        units: dict[str, Literal["wan", "yuan"]] = {}
        for header, name in zip(self.headers, self.fields, strict=True):
            if name in AMOUNT_FIELDS and (header_unit(header) or "").endswith("元"):
                units[name] = "wan" if "万" in (header_unit(header) or "") else "yuan"
        return units

    def missing_required(self) -> list[str]:
        present = set(self.fields)
        return [f for f in REQUIRED[self.kind] if f not in present]

    def describe_missing(self) -> list[str]:
        return [describe_field(f, self.kind) for f in self.missing_required()]

    def describe_repeated(self) -> list[str]:
        """One sentence per field two columns of the same name give (empty: none)."""
        return [
            f"columns {a + 1} and {b + 1} are both named {self.headers[b]!r} ({field}): "
            f"remove one, or name the one to use in the source's field_map "
            f"(e.g. {_raw_keys(self.headers)[b]!r}: {UNMAPPED!r} keeps column {b + 1} unmapped)"
            for a, b, field in self.repeated
        ]

    @property
    def single_columns(self) -> dict[str, int]:
        """Field → column index for the fields read from one column (the last wins, as in `apply`)."""
        return {f: i for i, f in self._singles}

    @property
    def joined_columns(self) -> tuple[int, ...]:
        """The columns joined into `JOINED_FIELD`, in order."""
        return tuple(self._joined)

    @property
    def extra_columns(self) -> tuple[tuple[int, str], ...]:
        """(column index, raw-extra key) of the unmapped columns."""
        return tuple(self._extras)

    def apply(self, values: Sequence[object]) -> tuple[dict[str, object], dict[str, object]]:
        """(fields, raw extras keyed by original header) of one row."""
        if len(values) < len(self.headers):
            values = [*values, *[None] * (len(self.headers) - len(values))]
        fields = {f: values[i] for i, f in self._singles}
        joined = self._joined
        if len(joined) == 1:
            fields[JOINED_FIELD] = values[joined[0]]
        elif joined:
            fields[JOINED_FIELD] = _join(values[i] for i in joined)
        return fields, {k: values[i] for i, k in self._extras}


def build_mapping(
    headers: list[str], kind: Kind, overrides: Mapping[str, str] | None = None
) -> HeaderMapping:
    """Map each header to a field; `overrides` (header → field code or name) win.

    An override may name the n-th column of a repeated header as `HEADER #n` (n ≥ 2), and
    map a column to `-` to keep it unmapped. Two columns of one name that would give one
    field are reported in `repeated` (the caller refuses the file); two different
    names for one field (e.g. CF_NR and CF_JG): the first one wins, the other stays raw.
    """
    lookup = _LOOKUP[kind]
    chosen = {header_key(h): _override_target(h, t, kind) for h, t in (overrides or {}).items()}
    fields: list[str | None] = []
    repeated: list[tuple[int, int, str]] = []
    first: dict[tuple[str, str], int] = {}
    for column, (header, nth) in enumerate(zip(headers, _raw_keys(headers), strict=True)):
        key = header_key(header)
        given = chosen.get(header_key(nth), chosen.get(key))
        name = (given or None) if given is not None else lookup.get(key)
        if name is not None and name != JOINED_FIELD and (key, name) in first:
            repeated.append((first[key, name], column, name))
        elif name is not None:
            first.setdefault((key, name), column)
        # a second column for a field already mapped stays raw: the first one wins
        fields.append(None if name in fields and name != JOINED_FIELD else name)
    _fallbacks(headers, kind, fields, chosen)
    return HeaderMapping(kind, tuple(headers), tuple(fields), tuple(repeated))


def _fallbacks(
    headers: list[str], kind: Kind, fields: list[str | None], chosen: Mapping[str, str]
) -> None:
    """Map a `FALLBACK_ALIASES` column to its field when no column gave that field."""
    fallback = _FALLBACK[kind]
    for column, header in enumerate(headers):
        key = header_key(header)
        name = fallback.get(key)
        if fields[column] is None and name and name not in fields and key not in chosen:
            fields[column] = name


def _override_target(header: str, target: str, kind: Kind) -> str:
    """The field a field_map entry maps to; "" for `-` (kept unmapped)."""
    if target.strip() == UNMAPPED:
        return ""
    if target in ALIASES[kind]:
        return target
    name = _LOOKUP[kind].get(header_key(target))
    if name is None:
        known = ", ".join(ALIASES[kind])
        raise ConfigError(
            f"field_map: {header!r} → {target!r}: not a {kind} field code or name (known: {known})"
        )
    return name


def _raw_keys(headers: Sequence[str]) -> list[str]:
    """Headers as raw-extra keys; a repeated header gets ' #2', ' #3' so none is lost."""
    seen: dict[str, int] = {}
    keys = []
    for header in headers:
        seen[header] = seen.get(header, 0) + 1
        keys.append(header if seen[header] == 1 else f"{header} #{seen[header]}")
    return keys


def _join(values: Iterable[object]) -> str:
    texts = (str(v).strip() for v in values if v is not None)
    return ";".join(t for t in texts if t)


ORIGINS: dict[str, str] = {
    "alias": "内置别名 (a built-in alias)",
    "fallback": "备用别名 (a fallback alias: no column had the field's own)",
    "field_map": "field_map 指定 (the source's field_map)",
    "personal": "自然人信息，只用于识别，不保存 (a person's data: read to tell a natural person, never kept)",
    "known_extra": "已识别，原样保留 (recognised, kept as a raw extra)",
    "unmapped": "未识别，原样保留 (not recognised: kept as a raw extra; map it in field_map)",
    "repeated": "重复的列名，未使用 (a repeated header: the first such column is used)",
}
"""How a column came to its field (`column_origins`), for `sources check`."""


def column_origins(mapping: HeaderMapping, overrides: Mapping[str, str] | None = None) -> list[str]:
    """For each column of `mapping`, how it got its field (`ORIGINS`)."""
    chosen = {header_key(h) for h in overrides or {}}
    lookup, fallback = _LOOKUP[mapping.kind], _FALLBACK[mapping.kind]
    origins = []
    for header, nth, name in zip(
        mapping.headers, _raw_keys(mapping.headers), mapping.fields, strict=True
    ):
        key = header_key(header)
        if header_key(nth) in chosen or key in chosen:
            origins.append("field_map")
        elif name is None:
            found = lookup.get(key) or fallback.get(key)
            origins.append(
                "repeated" if found else "known_extra" if key in _KNOWN_EXTRAS else "unmapped"
            )
        elif name in PERSONAL_FIELDS:
            origins.append("personal")
        elif key in fallback and lookup.get(key) != name:
            origins.append("fallback")
        else:
            origins.append("alias")
    return origins
