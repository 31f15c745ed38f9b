"""The company answer page: a personal link on every notice, answered without logging in.

`codes` makes and hashes the codes, `answers` reads a code's record and writes what the
company answered into the ledger (audited, source ``company``), `security` holds the
CSRF tokens, the rate limiter and the response headers, `site` is the Flask application
and `serve` runs it under gunicorn.
"""
