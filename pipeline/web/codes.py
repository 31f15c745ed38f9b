"""Personal link codes: 64 random bits in 11 base58 characters, stored as a SHA-256 hash.

11 characters fit an SMS template parameter (Tencent allows 12) and a short printed URL;
base58 has no 0/O/I/l to misread. Only the hash is stored: a copy of the database does
not give anyone the links (the rendered notices in the outbox do, as any sent letter).
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
LENGTH = 11  # 58**11 > 2**64
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def new_code() -> str:
    """A fresh code from the OS's cryptographic random source."""
    return encode(secrets.randbits(64))


def encode(number: int) -> str:
    chars = []
    for _ in range(LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def well_formed(code: str) -> bool:
    return len(code) == LENGTH and all(c in _INDEX for c in code)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()
