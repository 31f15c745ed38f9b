"""Parsing of single snapshot cells: dates, amounts in 万元, free text, penalty types.

Each parser raises ValueError with a short message that quotes the bad value; the caller
adds the file, row and field. These run on every row, so the common forms are tried
first and regexes are compiled once.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from pipeline.office.text import has_controls, strip_controls

_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?:\s*日)?"
    r"|(\d{4})(\d{2})(\d{2})"
)
# An optional time (and UTC offset, from JSON APIs); the date is taken as written.
_TIME = re.compile(r"(?:(?:\s+|T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_TYPE_SEPARATORS = re.compile(r"[;；、,，/]")
_YUAN_PER_WAN = Decimal(10000)
# Longest suffix first: "万元" must not be read as "元".
_UNITS = (("万元", Decimal(1)), ("万", Decimal(1)), ("元", _YUAN_PER_WAN))


def _ascii(text: str) -> str:
    """Full-width digits and punctuation to ASCII; skipped when already ASCII (fast)."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def parse_date(value: object) -> dt.date | None:
    """A date cell: a date/datetime object, or text in one of the usual Chinese forms."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):  # before `date`: datetime is a subclass
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a date")
    text = _ascii(str(value)).strip()
    if not text:
        return None
    return _iso_date(text) or _other_date(text)


def _iso_date(text: str) -> dt.date | None:
    """The common `2022-05-09` (optionally with a time) without a regex."""
    if len(text) >= 10 and text[4] == "-" and text[7] == "-" and _TIME.fullmatch(text, 10):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None  # e.g. month 13: let the slow path explain it
    return None


def _other_date(text: str) -> dt.date:
    match = _DATE.match(text)
    if match is None or not _TIME.fullmatch(text, match.end()):
        raise ValueError(f"{text!r} is not a date (expected e.g. 2022-05-09 or 2022年5月9日)")
    groups = [g for g in match.groups() if g is not None]
    year, month, day = (int(g) for g in groups)
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is out of range in {text!r}")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"day {day} is out of range for {year}-{month:02d} in {text!r}") from None


def parse_amount_wan(value: object) -> Decimal | None:
    """An amount in 万元; text may carry a unit (`2000元` is 0.2 万元) and thousands commas."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, str):
        return _amount_text(value)
    # str() first: Decimal(0.2) would carry the float's binary error into the amount
    return _non_negative(Decimal(str(value)), repr(value))


def _amount_text(value: str) -> Decimal | None:
    text = "".join(_ascii(value).split()).replace(",", "")
    if not text:
        return None
    divisor = Decimal(1)
    for unit, unit_divisor in _UNITS:
        if text.endswith(unit):
            text, divisor = text[: -len(unit)], unit_divisor
            break
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    return _non_negative(amount, repr(value)) / divisor


def _non_negative(amount: Decimal, shown: str) -> Decimal:
    if not amount.is_finite():
        raise ValueError(f"{shown} is not an amount")
    if amount < 0:
        raise ValueError(f"amount {shown} is negative")
    return amount


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


def decision_key(value: object) -> str | None:
    """A decision number as the key records are matched by, or None when empty.

    Control and zero-width characters are dropped, then NFKC (full-width to ASCII) and no
    whitespace, so a trailing NUL or a zero-width space in a re-export finds the same
    record; raises ValueError for what still cannot be seen (an unassigned, private-use
    or filler character), which would make a twin that looks the same.
    """
    text = "".join(unicodedata.normalize("NFKC", strip_invisible(clean_text(value))).split())
    if not text:
        return None
    if text.isprintable() and _BLANK_LETTERS.isdisjoint(text):
        return text
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
    return text or None


def split_penalty_types(text: str) -> list[str]:
    """`警告;罚款、没收违法所得` → the types in order, without blanks or repeats."""
    parts = (part.strip() for part in _TYPE_SEPARATORS.split(text))
    return list(dict.fromkeys(part for part in parts if part))
