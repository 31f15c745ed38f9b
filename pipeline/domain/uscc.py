"""Unified social credit code (统一社会信用代码, GB 32100-2015) validation.

A malformed code (length, alphabet) is an error; a wrong check character, either the
code's own (character 18) or the organisation code's (character 17), is only a warning,
because real codes from early pilot areas fail the check (domain.md §5).

This runs on every row of a snapshot (a million rows), so it avoids regexes and uses
precomputed lookup tables.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from operator import mul

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters allowed (no I O S V Z)."""
LENGTH = 18

_VALID = frozenset(ALPHABET)
# Speed: bytes.translate turns an ASCII code into its values in one C call and
# sum(map(mul, ...)) weights them, also in C; several times faster than a Python loop.
_VALUES = bytes.maketrans(ALPHABET.encode(), bytes(range(len(ALPHABET))))
_WEIGHTS = bytes((1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28))
# The organisation code (GB 11714) values letters A=10 … Z=35, unlike the USCC alphabet.
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_VALUES = bytes.maketrans(_ORG_ALPHABET.encode(), bytes(range(len(_ORG_ALPHABET))))
# Zero weights for characters 1–8 let the whole code be weighted without slicing.
_ORG_WEIGHTS = bytes((0, 0, 0, 0, 0, 0, 0, 0, 3, 7, 9, 10, 5, 8, 4, 2))
# Σ mod 11 → the expected check byte: 11 − r, where 10 → X and 11 → 0.
_ORG_CHECK = bytes(ord("0123456789X0"[11 - r]) for r in range(11))
# Invisible characters that are not whitespace to str.split() but turn up in pasted codes.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@dataclass(frozen=True, slots=True)
class UsccResult:
    """`error` set: the code is unusable. `warning` set: usable but fails a check."""

    code: str
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.warning is None


def normalise_code(text: str) -> str:
    """Full-width to ASCII (NFKC), all whitespace removed, upper case."""
    if not text.isascii():  # skip NFKC in the common case: it cannot change ASCII
        text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return "".join(text.split()).upper()


def check_char(prefix17: str) -> str:
    """The check character (18th) for the first 17 characters (all in ALPHABET)."""
    # 31 − (Σ mod 31), with 31 → 0, is simply −Σ mod 31; map() stops after 17 weights
    return ALPHABET[-sum(map(mul, prefix17.encode("ascii").translate(_VALUES), _WEIGHTS)) % 31]


def make_uscc(prefix17: str) -> str:
    """Append the right check character; for sample data and benchmarks."""
    if len(prefix17) != LENGTH - 1:
        raise ValueError(f"prefix has {len(prefix17)} characters, expected {LENGTH - 1}")
    if not _VALID.issuperset(prefix17):
        raise ValueError(f"prefix {_malformed(prefix17 + '0')}")
    return prefix17 + check_char(prefix17)


def check_uscc(code: str) -> UsccResult:
    """Validate an already-normalised code (see `normalise_code`).

    Written as one flat function on purpose: it runs once per row of a million-row file.
    """
    if len(code) != LENGTH or not _VALID.issuperset(code):
        return UsccResult(code, error=_malformed(code))
    raw = code.encode("ascii")  # safe: every character is in ALPHABET
    expected = ALPHABET[-sum(map(mul, raw.translate(_VALUES), _WEIGHTS)) % 31]
    if code[17] != expected:
        return UsccResult(code, warning=f"check character is {code[17]!r}, expected {expected!r}")
    org_total = sum(map(mul, raw.translate(_ORG_VALUES), _ORG_WEIGHTS))
    if raw[16] != _ORG_CHECK[org_total % 11]:
        return UsccResult(code, warning=_org_code_warning(code, org_total))
    return UsccResult(code)


def is_clean(code: str) -> bool:
    """`check_uscc(code).ok` without building a result: the per-row fast path."""
    if len(code) != LENGTH or not _VALID.issuperset(code):
        return False
    raw = code.encode("ascii")
    if code[17] != ALPHABET[-sum(map(mul, raw.translate(_VALUES), _WEIGHTS)) % 31]:
        return False
    org_total: int = sum(map(mul, raw.translate(_ORG_VALUES), _ORG_WEIGHTS))
    return raw[16] == _ORG_CHECK[org_total % 11]


def area_code(code: str) -> str:
    """Characters 3–8: the GB/T 2260 area code of the registering authority."""
    return code[2:8]


def _malformed(code: str) -> str:
    if len(code) != LENGTH:
        return f"has {len(code)} characters, expected {LENGTH}"
    bad = next(ch for ch in code if ch not in _VALID)
    return f"contains {bad!r}, not allowed"


def _org_code_warning(code: str, org_total: int) -> str:
    expected = chr(_ORG_CHECK[org_total % 11])
    return f"organisation code check character is {code[16]!r}, expected {expected!r}"
