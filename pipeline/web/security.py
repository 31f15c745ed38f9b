"""The answer page's defences: CSRF tokens, a rate limiter, response headers, input checks.

- CSRF: a form carries an HMAC of the code and the minute it was issued, keyed by
  `web.secret`; a POST without a valid, recent token is refused (the page has no
  cookies, so a token bound to the code is what proves the form came from the page).
- Rate limits per client address and per code (a fixed one-minute window, in memory
  per worker: a guessing run is slowed to a crawl, and 2**64 codes stay out of reach).
- Headers: a CSP that allows no script, no framing, no referrer, no sniffing.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import defaultdict

TOKEN_MINUTES = 120
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def csrf_token(secret: str, code: str, minute: int) -> str:
    mac = hmac.new(secret.encode(), f"{code}:{minute}".encode(), hashlib.sha256).hexdigest()
    return f"{minute}.{mac[:32]}"


def csrf_ok(secret: str, code: str, token: str, minute: int) -> bool:
    issued_text, _, _ = token.partition(".")
    if not issued_text.isdigit():
        return False
    issued = int(issued_text)
    if not 0 <= minute - issued <= TOKEN_MINUTES:
        return False
    return hmac.compare_digest(token, csrf_token(secret, code, issued))


def ip_hash(secret: str, address: str) -> str:
    """The client address as stored: keyed, so the log holds no address to look up."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()


class RateLimiter:
    """At most `limit` hits per key per minute (a fixed window; thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._window = -1
        self._hits: dict[str, int] = defaultdict(int)

    def allow(self, key: str, now: float | None = None) -> bool:
        window = int((time.monotonic() if now is None else now) // 60)
        with self._lock:
            if window != self._window:
                self._window, self._hits = window, defaultdict(int)
            self._hits[key] += 1
            return self._hits[key] <= self.limit
