"""Unified social credit code (统一社会信用代码, GB 32100-2015) validation.

A malformed code (length, alphabet) is an error; a wrong check character, either the
code's own (character 18) or the organisation code's (character 17), is only a warning,
because real codes from early pilot areas fail the check (domain.md §5).

This runs on every row of a snapshot (a million rows), so it avoids regexes and uses
precomputed lookup tables.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from operator import mul
from typing import Literal

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


# --------------------------------------------------------------------------- other identity codes

CodeKind = Literal[
    "empty", "uscc", "uscc_split", "reg_no", "org_code", "placeholder", "person_id", "malformed"
]
CODE_KINDS: dict[str, str] = {
    "uscc_split": "统一社会信用代码被空格分开 (a USCC split by a space: joined)",
    "reg_no": "15位注册号 (a 15-digit registration number 注册号, not a USCC)",
    "org_code": "9位组织机构代码 (a 9-character organisation code, not a USCC)",
    "placeholder": "占位代码 (a placeholder such as 00000000000000000X, no code)",
    "person_id": "居民身份证号 (a natural person's identity card number)",
}
"""What a 统一社会信用代码 cell may hold besides a USCC, recognised and reported as such
(never as a malformed USCC): only `uscc` and `uscc_split` give the record a USCC."""
_ORG_CODE = re.compile(r"[0-9A-Z]{8}-?[0-9X]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True, slots=True)
class Identity:
    kind: CodeKind
    code: str
    """The code normalised (`normalise_code`); for `uscc_split` the USCC found."""

    @property
    def uscc(self) -> str | None:
        """The USCC this cell gives the record, if any (its check is another matter)."""
        return self.code if self.kind in ("uscc", "uscc_split") else None


def identify(text: str) -> Identity:
    """What a 统一社会信用代码 cell holds (`CODE_KINDS`); `malformed` when nothing known."""
    code = normalise_code(text)
    if not code:
        return Identity("empty", code)
    if is_placeholder(code):
        return Identity("placeholder", code)
    split = len(text.split()) > 1
    if len(code) == LENGTH and _VALID.issuperset(code):
        if _is_person_id(code) and not is_clean(code):
            return Identity("person_id", code)
        return Identity("uscc_split" if split else "uscc", code)
    if split:
        parts = [normalise_code(p) for p in unicodedata.normalize("NFKC", text).split()]
        found = [p for p in parts if len(p) == LENGTH and _VALID.issuperset(p)]
        if len(found) == 1 and not is_placeholder(found[0]):
            return Identity("uscc_split", found[0])
    if len(code) == 15 and code.isdigit():
        return Identity("reg_no", code)
    if _ORG_CODE.fullmatch(code):
        return Identity("org_code", code)
    return Identity("malformed", code)


def is_placeholder(code: str) -> bool:
    """`00000000000000000X`, `000000000000000000`, `111111111111111111`: no code (some pass
    the check characters: all zeros does)."""
    body = code.rstrip("X")
    return len(code) >= 9 and (not body.strip("0") or len(set(code)) == 1)


def _is_person_id(code: str) -> bool:
    """An 18-character resident identity card number (GB 11643): digits, a birth date,
    its own check character."""
    if not code[:17].isdigit() or code[17] not in "0123456789X":
        return False
    total = sum(int(c) * w for c, w in zip(code, _ID_WEIGHTS, strict=False))
    if _ID_CHECK[total % 11] != code[17]:
        return False
    try:
        born = dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100
