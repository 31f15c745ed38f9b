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
_ORG_WEIGHTS = bytes((3, 7, 9, 10, 5, 8, 4, 2))
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
    return _check_char(prefix17.encode("ascii"))


def _check_char(code: bytes) -> str:
    """From the first 17 bytes of an ASCII code already known to be in the alphabet."""
    total = sum(map(mul, code.translate(_VALUES), _WEIGHTS))  # map stops after 17
    return ALPHABET[(31 - total % 31) % 31]


def make_uscc(prefix17: str) -> str:
    """Append the right check character; for sample data and benchmarks."""
    if len(prefix17) != LENGTH - 1:
        raise ValueError(f"prefix has {len(prefix17)} characters, expected {LENGTH - 1}")
    error = _malformed(prefix17 + "0")
    if error is not None:
        raise ValueError(f"prefix {error}")
    return prefix17 + check_char(prefix17)


def check_uscc(code: str) -> UsccResult:
    """Validate an already-normalised code (see `normalise_code`)."""
    error = _malformed(code)
    if error is not None:
        return UsccResult(code, error=error)
    raw = code.encode("ascii")  # safe: every character is in ALPHABET
    expected = _check_char(raw)
    if code[17] != expected:
        return UsccResult(code, warning=f"check character is {code[17]!r}, expected {expected!r}")
    return UsccResult(code, warning=_org_code_warning(raw[8:17]))


def area_code(code: str) -> str:
    """Characters 3–8: the GB/T 2260 area code of the registering authority."""
    return code[2:8]


def _malformed(code: str) -> str | None:
    if len(code) == LENGTH and _VALID.issuperset(code):  # the fast, common case
        return None
    if len(code) != LENGTH:
        return f"has {len(code)} characters, expected {LENGTH}"
    bad = next(ch for ch in code if ch not in _VALID)
    return f"contains {bad!r}, not allowed"


def _org_code_warning(org: bytes) -> str | None:
    """Characters 9–17: an organisation code whose last character checks the other eight."""
    total = sum(map(mul, org.translate(_ORG_VALUES), _ORG_WEIGHTS))  # map stops after 8
    expected = "0123456789X0"[11 - total % 11]
    found = chr(org[8])
    if found == expected:
        return None
    return f"organisation code check character is {found!r}, expected {expected!r}"
