"""Structured logs (structlog): JSON lines off a terminal, readable console on one.

Personal data is masked by a processor, so no call site can forget: phone numbers,
e-mail addresses and contact names (by key) never reach the log in clear.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any
from zoneinfo import ZoneInfo

import structlog

PHONE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)\d{4}(\d{4})(?!\d)")
EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)")
NAME_KEYS = frozenset(
    {"contact_name", "recipient_name", "name_of_contact", "responsible", "legal_rep"}
)
SECRET_KEYS = frozenset(
    {"password", "secret", "access_key_secret", "secret_key", "auth_header", "token"}
)


def mask_text(text: str) -> str:
    """138****5678, a***@example.com."""
    return EMAIL.sub(r"\1***\2", PHONE.sub(r"\1****\2", text))


def mask_name(name: str) -> str:
    """张三丰 → 张**: the surname is enough to tell two people apart in a log."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def _mask_value(key: str, value: Any) -> Any:
    if key in SECRET_KEYS:
        return "***"
    if isinstance(value, str):
        return mask_name(value) if key in NAME_KEYS else mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {k: _mask_value(k, v) for k, v in event.items()}


def business_time(tz: ZoneInfo) -> Any:
    """A processor stamping each event with the real time in the business zone (+08:00)."""

    def stamp(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
        event["timestamp"] = dt.datetime.now(tz).isoformat(timespec="milliseconds")
        return event

    return stamp


def configure(level: str = "info", fmt: str = "auto", tz: ZoneInfo | None = None) -> None:
    """Logs on stderr; timestamps in `tz` (the configured business zone), else UTC."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True)
            if tz is None
            else business_time(tz),
            mask_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
