"""Parsing of single snapshot cells: dates, amounts in 万元, free text, penalty types,
decision numbers.

Each parser raises ValueError with a short message that quotes the bad value; the caller
adds the file, row and field. These run on every row, so the common forms are tried
first and regexes are compiled once. The forms accepted are listed, with what each
parses to, in `DATE_EXAMPLES`, `AMOUNT_EXAMPLES` and `DECISION_EXAMPLES`: the operator's
reference (docs/数据格式.md) is generated from them (`pipeline.sync.formats_doc`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

from pipeline.office.text import has_controls, strip_controls

DateOrder = Literal["ymd", "mdy", "dmy"]
"""How a source writes a date whose year comes last (`03/29/2018`): `ymd` refuses such
dates (the order cannot be told), `mdy` reads month first, `dmy` day first."""
EMPTY_MARKERS = frozenset({"null", "NULL", "Null", "-", "--", "—", "无", "/"})
"""Texts exports write for "no value" (in a date, amount or code cell): read as empty."""

_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?:\s*日)?"
    r"|(\d{4})(\d{2})(\d{2})"
)
_YEAR_LAST = re.compile(r"(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{4})")
# An optional time (and UTC offset, from JSON APIs); the date is taken as written.
_TIME = re.compile(r"(?:(?:\s+|T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_CN_ZERO = "〇○ОOo零"
"""The zero of a year written in Chinese numerals: 〇, the circle ○, a Cyrillic or Latin O."""
_CN_DIGIT_VALUES = {
    **dict.fromkeys(_CN_ZERO, 0),
    **{ch: i for i, ch in enumerate("一二三四五六七八九", 1)},
    **{ch: i for i, ch in enumerate("壹贰叁肆伍陆柒捌玖", 1)},
    "两": 2,
}
_CN_DIGITS = "".join(_CN_DIGIT_VALUES)
_CN_DATE = re.compile(
    rf"([0-9{_CN_DIGITS}]{{4}})\s*年\s*([0-9{_CN_DIGITS}十拾]{{1,3}})\s*月"
    rf"\s*([0-9{_CN_DIGITS}十拾]{{1,3}})\s*[日号]?"
)
CST = dt.timezone(dt.timedelta(hours=8), "CST")
"""China Standard Time (no daylight saving since 1991): the zone of epoch timestamps."""
_EPOCH_MS = (315_532_800_000, 4_102_444_800_000)
"""Epoch milliseconds taken as a date: 1980-01-01 … 2100-01-01 (13 digits, or 12)."""
_TYPE_SEPARATORS = re.compile(r"[;；、,，/]")
_YUAN_PER_WAN = Decimal(10000)
# Longest suffix first: "万元" must not be read as "元".
_UNITS = (("万元", Decimal(1)), ("万", Decimal(1)), ("元", _YUAN_PER_WAN))
AmountUnit = Literal["wan", "yuan"]
"""What a bare number in an amount column is in: 万元 (the standard fields) or 元 (a
column whose header says so, e.g. `罚款金额（元）`)."""
_DIVISORS: dict[str, Decimal] = {"wan": Decimal(1), "yuan": _YUAN_PER_WAN}


def _ascii(text: str) -> str:
    """Full-width digits and punctuation to ASCII; skipped when already ASCII (fast)."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def parse_date(value: object, order: DateOrder = "ymd") -> dt.date | None:
    """A date cell: a date/datetime object, epoch milliseconds, or text in one of the usual
    Chinese forms (`DATE_EXAMPLES`); `order` says how a source writes year-last dates."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):  # before `date`: datetime is a subclass
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float) and value.is_integer() and _is_epoch_ms(int(value)):
        return _from_epoch_ms(int(value))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a date")
    text = _ascii(str(value)).strip()
    if not text or text in EMPTY_MARKERS:
        return None
    return _iso_date(text) or _other_date(text, order)


def _is_epoch_ms(number: int) -> bool:
    return _EPOCH_MS[0] <= number < _EPOCH_MS[1]


def _from_epoch_ms(number: int) -> dt.date:
    return dt.datetime.fromtimestamp(number / 1000, CST).date()


def _iso_date(text: str) -> dt.date | None:
    """The common `2022-05-09` (optionally with a time) without a regex."""
    if len(text) >= 10 and text[4] == "-" and text[7] == "-" and _TIME.fullmatch(text, 10):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None  # e.g. month 13: let the slow path explain it
    return None


def _other_date(text: str, order: DateOrder) -> dt.date:
    match = _DATE.match(text)
    if match is not None and _TIME.fullmatch(text, match.end()):
        groups = [g for g in match.groups() if g is not None]
        year, month, day = (int(g) for g in groups)
        return _checked_date(year, month, day, text)
    if text.isdigit() and _is_epoch_ms(int(text)):
        return _from_epoch_ms(int(text))
    year_last = _YEAR_LAST.match(text)
    if year_last is not None and _TIME.fullmatch(text, year_last.end()):
        return _year_last_date(year_last, order, text)
    chinese = _CN_DATE.fullmatch(text)
    if chinese is not None:
        year = int("".join(str(_cn_digit(ch)) for ch in chinese.group(1)))
        return _checked_date(year, _cn_small(chinese.group(2)), _cn_small(chinese.group(3)), text)
    raise ValueError(f"{text!r} is not a date (expected e.g. 2022-05-09 or 2022年5月9日)")


def _year_last_date(match: re.Match[str], order: DateOrder, text: str) -> dt.date:
    first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if order == "mdy":
        return _checked_date(year, first, second, text)
    if order == "dmy":
        return _checked_date(year, second, first, text)
    raise ValueError(
        f"{text!r} is not a date in year-month-day order: with the year last, which of "
        f"{match.group(1)} and {match.group(3)} is the month cannot be told; if the source "
        "writes month first (03/29/2018) declare its date_order: mdy, day first: dmy"
    )


def _checked_date(year: int, month: int, day: int, text: str) -> dt.date:
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is out of range in {text!r}")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"day {day} is out of range for {year}-{month:02d} in {text!r}") from None


def _cn_digit(ch: str) -> int:
    return int(ch) if ch in "0123456789" else _CN_DIGIT_VALUES[ch]


def _cn_small(text: str) -> int:
    """A month or day in Chinese numerals: 三, 十一, 二十七, 三十一 (or digits, 〇三)."""
    text = text.replace("拾", "十")
    if "十" not in text:
        return int("".join(str(_cn_digit(ch)) for ch in text))
    tens, _, units = text.partition("十")
    return (_cn_digit(tens) if tens else 1) * 10 + (_cn_digit(units) if units else 0)


def parse_amount_wan(value: object, unit: AmountUnit = "wan") -> Decimal | None:
    """An amount column's cell in 万元: a number (in `unit`), or text (`AMOUNT_EXAMPLES`):
    with a unit (`2000元` is 0.2 万元), thousands commas, Chinese numerals (`一万五千元`),
    words around it (`罚款人民币二十万元`). Text that names no amount of money (`警告`) is
    no amount, not an error; several labelled amounts: the fine's (`罚款…`)."""
    return _parse_amount(value, unit, "fine")


def parse_confiscated_wan(value: object, unit: AmountUnit = "wan") -> Decimal | None:
    """As `parse_amount_wan`, for the confiscation column: of several labelled amounts,
    the confiscation's (`没收违法所得…`)."""
    return _parse_amount(value, unit, "confiscated")


def _parse_amount(value: object, unit: AmountUnit, label: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, str):
        return _amount_text(value, _DIVISORS[unit], label)
    # str() first: Decimal(0.2) would carry the float's binary error into the amount
    return _non_negative(Decimal(str(value)), repr(value)) / _DIVISORS[unit]


def _amount_text(value: str, divisor: Decimal, label: str) -> Decimal | None:
    text = "".join(_ascii(value).split()).replace(",", "")
    if not text or text in EMPTY_MARKERS:
        return None
    number = text
    for unit, unit_divisor in _UNITS:
        if text.endswith(unit):
            number, divisor = text[: -len(unit)], unit_divisor
            break
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return _amount_in_words(value, text, label)
    return _non_negative(amount, repr(value)) / divisor


def _amount_in_words(value: str, text: str, label: str) -> Decimal | None:
    """Text that is not a bare number: the amounts of money it names (`money_amounts`)."""
    if text.startswith("-"):
        raise ValueError(f"amount {value!r} is negative")
    if _FOREIGN.search(text):
        raise ValueError(f"{value!r} is not an amount in 人民币 (another currency)")
    whole = _WHOLE_AMOUNT.fullmatch(text)
    if whole is not None:
        return _money(whole.group("num"), whole.group("unit"), value)
    if _MONEY_WORDS.sub("", text).isascii():  # digits and units only, yet no amount
        raise ValueError(f"{value!r} is not an amount")
    found = money_amounts(text)
    if found.any:
        return found.fine if label == "fine" else found.confiscated
    return None  # a non-monetary result (警告, 取消任职资格3年): no amount


def _non_negative(amount: Decimal, shown: str) -> Decimal:
    if not amount.is_finite():
        raise ValueError(f"{shown} is not an amount")
    if amount < 0:
        raise ValueError(f"amount {shown} is negative")
    return amount


_CN_NUMERALS = "".join(ch for ch in _CN_DIGITS if ch not in "ОOo") + "十拾百佰千仟万萬亿点"
"""Chinese numerals in an amount (no Latin or Cyrillic O: only a year's zero is written so)."""
_MONEY = re.compile(rf"(?P<num>\d+(?:\.\d+)?|[{_CN_NUMERALS}]+)(?P<unit>亿元|万元|萬元|万|萬|元)")
_WHOLE_AMOUNT = re.compile(
    rf"(?:人民币)?(?P<num>\d+(?:\.\d+)?|[{_CN_NUMERALS}]+)(?P<unit>亿元|万元|萬元|万|萬|元)"
    r"(?:人民币)?整?"
)
_MONEY_WORDS = re.compile(r"人民币|[元万萬亿整]")
_FOREIGN = re.compile(r"(?:美|港|欧|日|澳门|新台)元|美金|英镑")
_LABELS = re.compile(r"没收|罚款|罚金")
_CLAUSE = re.compile(r"[，,；;。！!]")
_AFTER_LABEL = re.compile(r"(?:的)?(罚款|罚金)")
_UNIT_YUAN = {"亿元": Decimal(10) ** 8, "万元": _YUAN_PER_WAN, "萬元": _YUAN_PER_WAN}
_UNIT_YUAN.update({"万": _YUAN_PER_WAN, "萬": _YUAN_PER_WAN, "元": Decimal(1)})


class Amounts:
    """The amounts of money a text names, in 万元, by what they are: the fine (罚款, 罚金)
    and the confiscation (没收…); `any` is true when it names any amount of money."""

    __slots__ = ("any", "confiscated", "fine")

    def __init__(self, fine: Decimal | None, confiscated: Decimal | None, any: bool) -> None:
        self.fine, self.confiscated, self.any = fine, confiscated, any


@lru_cache(maxsize=8192)
def money_amounts(text: str) -> Amounts:
    """`没收违法所得13.07万元，罚款53.07万元` → fine 53.07, confiscated 13.07 (万元).

    An amount belongs to the nearest label before it in its clause (a clause ends at
    ，；。), else to `罚款` right after it (`并处25万元罚款`); amounts of one kind add up.
    An amount with no label counts only when it is the whole text (`一万五千元`).
    """
    text = "".join(_ascii(text).split()).replace(",", "")
    fine: Decimal | None = None
    confiscated: Decimal | None = None
    seen = False
    for match in _MONEY.finditer(text):
        try:
            amount = _money(match.group("num"), match.group("unit"), text)
        except ValueError:
            continue  # a run of numerals that is not a number (e.g. 万万)
        seen = True
        kind = _label_of(text, match)
        if kind == "fine":
            fine = (fine or 0) + amount
        elif kind == "confiscated":
            confiscated = (confiscated or 0) + amount
    whole = _WHOLE_AMOUNT.fullmatch(text) if seen and fine is None and confiscated is None else None
    if whole is not None:  # `一万五千元`: the text is one amount, named by its column
        fine = _money(whole.group("num"), whole.group("unit"), text)
    return Amounts(fine, confiscated, seen)


def _label_of(text: str, match: re.Match[str]) -> str | None:
    start = max((m.end() for m in _CLAUSE.finditer(text, 0, match.start())), default=0)
    labels = list(_LABELS.finditer(text, start, match.start()))
    if labels:
        return "confiscated" if labels[-1].group() == "没收" else "fine"
    return "fine" if _AFTER_LABEL.match(text, match.end()) else None


def _money(number: str, unit: str, shown: str) -> Decimal:
    """A number (digits or Chinese numerals) and its unit, in 万元."""
    value = Decimal(number) if number.isascii() else _cn_number(number, shown)
    return value * _UNIT_YUAN[unit] / _YUAN_PER_WAN


def _cn_number(text: str, shown: str) -> Decimal:
    """`二十`, `一万五千`, `贰仟`, `一点五` → the number (ValueError: not one)."""
    whole, point, fraction = text.partition("点")
    if point and fraction[-1:] in ("万", "萬", "亿"):  # 一点五万: 1.5 × 10,000
        scale = 10**8 if fraction[-1] == "亿" else 10_000
        return _cn_number(f"{whole}点{fraction[:-1]}", shown) * scale
    if point and (not fraction or any(ch not in _CN_DIGIT_VALUES for ch in fraction)):
        raise ValueError(f"{shown!r} is not an amount")
    total = section = digit = 0
    last_unit = None
    for ch in whole.replace("萬", "万"):
        if ch in _CN_DIGIT_VALUES:
            digit = _CN_DIGIT_VALUES[ch]
            last_unit = None
        elif ch in _SMALL_UNITS:
            section += (digit or 1) * _SMALL_UNITS[ch]
            digit, last_unit = 0, ch
        elif ch == "万" and last_unit != "万":
            total += (section + digit) * 10_000
            section = digit = 0
            last_unit = ch
        elif ch == "亿" and last_unit != "亿":
            total = (total + section + digit) * 10**8
            section = digit = 0
            last_unit = ch
        else:
            raise ValueError(f"{shown!r} is not an amount")
    value = Decimal(total + section + digit)
    if fraction:
        value += Decimal("0." + "".join(str(_CN_DIGIT_VALUES[ch]) for ch in fraction))
    return value


_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}


def clean_text(value: object) -> str:
    """Strip and collapse whitespace runs (incl. U+3000) to one space; keep the rest as is,
    but for the other control characters (``\x00``–``\x08``, ``\x0e``–``\x1b``), which XML,
    so every workbook and DOCX, cannot hold: they are removed (`strip_controls`).

    No NFKC here: names keep their Chinese punctuation (（）、【】) as published.
    """
    if value is None:
        return ""
    text = " ".join(str(value).split())  # \x0b \x0c \x1c-\x1f are whitespace: spaces
    if has_controls(text):
        text = " ".join(strip_controls(text).split())
    return text


_INVISIBLE = frozenset({"Cc", "Cf"})
"""Control characters (NUL, C1) and format characters (zero-width space/joiners, BOM,
bidirectional marks): nothing a reader sees, so nothing a key may differ by."""
_NEVER_IN_KEYS = frozenset({"Cn", "Co", "Cs"})
"""Unassigned, private-use and lone surrogate code points: a key holding one is refused."""
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that print as nothing (Hangul fillers, the braille blank)."""


def strip_invisible(text: str) -> str:
    """`text` without control and format characters (fast when it has none)."""
    if text.isprintable():
        return text
    category = unicodedata.category
    return "".join(ch for ch in text if category(ch) not in _INVISIBLE)


def decision_text(value: object) -> str | None:
    """A decision number as published, for display: whitespace runs collapsed, control and
    zero-width characters dropped, brackets and digits as written (`市场【2019】1号`)."""
    return strip_invisible(clean_text(value)) or None


_OPEN_BRACKETS = "[(【〖〔"
_CLOSE_BRACKETS = "])】〗〕"
_BRACKETS = str.maketrans(
    dict.fromkeys(_OPEN_BRACKETS, "〔") | dict.fromkeys(_CLOSE_BRACKETS, "〕")
)
"""After NFKC (which makes （）［］ ASCII and ﹝﹞ 〔〕): every year bracket of a 文号 as 〔〕."""
_OTHER_BRACKETS = re.compile(
    "[" + re.escape(_OPEN_BRACKETS + _CLOSE_BRACKETS).replace("〔", "").replace("〕", "") + "]"
)
_NUMBER_ZEROS = re.compile(r"第?(?<!\d)0*(?=\d+号)")
"""`第03号` → `3号`: the 第 and the leading zeros of the serial number before 号."""


def decision_key(value: object) -> str | None:
    """A decision number as the key records are matched by, or None when empty.

    Control and zero-width characters are dropped, then NFKC (full-width to ASCII) and no
    whitespace, so a trailing NUL or a zero-width space in a re-export finds the same
    record; every bracket style of the year (〔〕 [] ﹝﹞ () （） 【】 〖〗) becomes 〔〕, and
    the serial number loses its 第 and leading zeros (`第03号` is `3号`), so a re-export
    written another way is the same decision (`DECISION_EXAMPLES`). Raises ValueError
    for what still cannot be seen (an unassigned, private-use or filler character),
    which would make a twin that looks the same.
    """
    return key_of_text(strip_invisible(clean_text(value)))


def key_of_text(text: str | None) -> str | None:
    """`decision_key` of a text already cleaned (`decision_text`): the per-row fast path."""
    if not text:
        return None
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    if " " in text or not text.isprintable() or not _BLANK_LETTERS.isdisjoint(text):
        text = _visible_key("".join(text.split()))
    if _OTHER_BRACKETS.search(text):  # (str.translate is slow on non-ASCII text: only if needed)
        text = text.translate(_BRACKETS)
    end = text.rfind("号")
    if end > 0:
        start = len(text[:end].rstrip("0123456789"))  # where the serial number starts
        if text[start - 1 : start] == "第" or (end - start > 1 and text[start] == "0"):
            text = _NUMBER_ZEROS.sub("", text)
    return text or None


def _visible_key(text: str) -> str:
    text = strip_invisible(text)  # NFKC may make a format character of another
    bad = next(
        (ch for ch in text if ch in _BLANK_LETTERS or unicodedata.category(ch) in _NEVER_IN_KEYS),
        None,
    )
    if bad is not None:
        shown = text.encode("unicode_escape").decode("ascii")
        raise ValueError(
            f"{shown!r} holds the invisible character U+{ord(bad):04X}: it would make a "
            "record that looks like another"
        )
    return text


def split_penalty_types(text: str) -> list[str]:
    """`警告;罚款、没收违法所得` → the types in order, without blanks or repeats."""
    parts = (part.strip() for part in _TYPE_SEPARATORS.split(text))
    return list(dict.fromkeys(part for part in parts if part))


# --------------------------------------------------------------------------- the forms accepted
# The operator's reference (docs/数据格式.md) is generated from these, each example run
# through its parser (`pipeline.sync.formats_doc`); tests/test_formats_doc.py checks every
# example parses and the document is current.

DATE_EXAMPLES: tuple[tuple[object, DateOrder, str], ...] = (
    ("2022-05-09", "ymd", "ISO"),
    ("2022-05-09 10:00:00", "ymd", "with a time (the date is taken as written)"),
    ("2022-05-09T10:00:00.000+08:00", "ymd", "JSON APIs, with an offset"),
    ("20220509", "ymd", "compact"),
    ("2017-6-2", "ymd", "unpadded"),
    ("2017.8.28", "ymd", "dots"),
    ("2019/02/14", "ymd", "slashes"),
    ("2022年5月9日", "ymd", "Chinese"),
    ("2017年 8月4日", "ymd", "spaced"),
    ("２０２２年５月９日", "ymd", "full-width digits"),
    ("二〇〇八年三月二十七日", "ymd", "Chinese numerals (zero 〇)"),
    ("二○一一年十一月十一日", "ymd", "Chinese numerals (zero ○, also О, O)"),
    (1568180781000, "ymd", "epoch milliseconds, China Standard Time (JSON)"),
    ("1568131200000", "ymd", "epoch milliseconds as text"),
    ("null", "ymd", "an empty marker: " + " ".join(sorted(EMPTY_MARKERS))),
    ("03/29/2018", "mdy", "year last: only with the source's date_order: mdy"),
    ("29.03.2018", "dmy", "year last: only with the source's date_order: dmy"),
)
DATE_REFUSED: tuple[tuple[object, str], ...] = (
    ("03/29/2018", "year last without date_order: month and day cannot be told apart"),
    ("2022-02-30", "a day the month does not have"),
    ("2022年13月1日", "month 13"),
    ("昨天", "not a date"),
)
AMOUNT_EXAMPLES: tuple[tuple[object, str, AmountUnit, str], ...] = (
    ("0.2", "fine_amount", "wan", "a number: 万元 (CF_NR_FK, 罚款金额（万元）)"),
    (0.2, "fine_amount", "wan", "a number cell (XLSX, JSON)"),
    ("2000", "fine_amount", "yuan", "a number in a column whose header says （元）"),
    ("1,000.5", "fine_amount", "wan", "thousands commas"),
    ("2000元", "fine_amount", "wan", "a unit: 元"),
    ("0.2万元", "fine_amount", "wan", "a unit: 万元 (or 万)"),
    ("罚款2000元", "fine_amount", "wan", "words around it"),
    ("罚款人民币二十万元", "fine_amount", "wan", "Chinese numerals"),
    ("一万五千元", "fine_amount", "wan", "Chinese numerals, no label"),
    ("罚款人民币贰仟元整", "fine_amount", "wan", "financial numerals"),
    ("罚款25万元人民币", "fine_amount", "wan", "人民币 after the amount"),
    ("责令改正，并处25万元罚款", "fine_amount", "wan", "the label after the amount"),
    ("没收违法所得13.07万元，罚款53.07万元", "fine_amount", "wan", "several amounts: the fine"),
    (
        "没收违法所得13.07万元，罚款53.07万元",
        "confiscated_amount",
        "wan",
        "several amounts: the confiscation",
    ),
    ("警告", "fine_amount", "wan", "a non-monetary result: no amount, not an error"),
    ("取消高级管理人员任职资格3年", "fine_amount", "wan", "a non-monetary result"),
    ("无", "fine_amount", "wan", "an empty marker"),
)
AMOUNT_REFUSED: tuple[tuple[object, str], ...] = (
    ("-2000元", "negative"),
    ("0.2美元", "another currency"),
    ("abc", "not an amount"),
)
DECISION_EXAMPLES: tuple[str, ...] = (
    "宝税罚〔2026〕3号",
    "宝税罚[2026]3号",
    "宝税罚﹝2026﹞3号",
    "宝税罚(2026)3号",
    "宝税罚（2026）3号",
    "宝税罚【2026】3号",
    " 宝税罚〔2026〕第03号",
    "宝税罚〔２０２６〕３号",
)
"""Ways one 文号 is written in exports: all the same decision (one key)."""
