"""What the SMS gateways share: checks made before anything is sent, and error mapping.

A message is checked against the provider's rules first (`prepare`): an SMS that would
be refused for a bad number, a missing or too long parameter or a URL in a variable
fails here, permanently, and the provider receives nothing.

Network failures map onto the outcomes of `pipeline.errors`' channel branch::

    refused / DNS / TLS / connect timeout  ChannelError(permanent=False)  nothing went out
    read timeout / reset after sending     OutcomeUnknown                 it may have gone out

Neither provider's SendSms is idempotent, so "may have gone out" is never resent blindly:
a second attempt could put a second SMS on someone's phone (and count against the low
per-number daily cap). A status query (Aliyun) or a person decides instead.

No phone number or secret enters a message: numbers are masked (138****5678), and the
`requests` exception (whose text holds the URL) is masked and not chained.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Self

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from pipeline.channels.base import Message
from pipeline.config import SmsSettings
from pipeline.errors import ChannelError, OutcomeUnknown
from pipeline.logs import mask_text

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Mainland China has had no daylight saving since 1991: a fixed offset needs no tzdata."""

_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
# like pipeline.logs.PHONE, and also after +86 / 86 (Tencent writes numbers as +8613812345678)
_ANY_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
# a scheme, www., or name.tld — also glued to Chinese text, where \b finds no boundary
_URLISH = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.-]*://|(?<![a-z0-9-])www\.|(?<![a-z0-9-])[a-z0-9-]+\."
    r"(?:com|cn|net|org|gov|edu|info|top|xyz|io|cc|me|co|biz|vip|site|link)(?![a-z0-9]))"
)
_URL_IN_ERROR = re.compile(r"url: \S+")
# a failure while connecting: the request never left this machine
_BEFORE_SENDING = (ConnectTimeoutError, NewConnectionError, Urllib3SSLError, Urllib3ProxyError)


@dataclass(frozen=True)
class Limits:
    """What a provider accepts in template variables."""

    provider: str
    max_length: int | None
    """Characters per variable (Tencent 12, Aliyun 35); None: no limit."""
    allow_urls: bool = False


@dataclass(frozen=True)
class SmsRequest:
    """A message checked against the provider's rules, ready to send."""

    key: str
    phone: str
    """11 digits, no country code."""
    template: str
    """The logical name (a key of `sms.templates`)."""
    template_id: str
    params: dict[str, str]
    """The template's parameters, in the template's order."""

    @property
    def masked_phone(self) -> str:
        return scrub(self.phone)


def scrub(text: str) -> str:
    """`text` with every mobile number (also +86…) and e-mail address masked."""
    return mask_text(_ANY_MOBILE.sub(r"\1****\2", text))


def prepare(message: Message, settings: SmsSettings, limits: Limits) -> SmsRequest:
    """Check `message` against the configuration and the provider's limits, or raise."""
    phone = mobile(message.recipient)
    name = message.sms_template
    if not name:
        raise ChannelError(
            "the message names no SMS template", permanent=True, code="template-missing"
        )
    template = settings.templates.get(name)
    if template is None:
        known = ", ".join(sorted(settings.templates)) or "none"
        raise ChannelError(
            f"SMS template {name!r} is not configured in sms.templates (configured: {known})",
            permanent=True,
            code="template-unknown",
        )
    params = {param: _param(message, name, param, limits) for param in template.params}
    return SmsRequest(message.key, phone, name, template.id, params)


def mobile(recipient: str) -> str:
    """The 11 digits of a mainland mobile number (+86 and separators dropped), or raise."""
    match = _MOBILE.fullmatch(recipient.strip().replace(" ", "").replace("-", ""))
    if match is None:
        # even a wrong number may be someone's: show only its end
        raise ChannelError(
            f"the recipient '…{recipient.strip()[-4:]}' is not an 11-digit mainland mobile number",
            permanent=True,
            code="invalid-number",
        )
    return match.group(1)


def _param(message: Message, template: str, name: str, limits: Limits) -> str:
    value = message.sms_params.get(name)
    if value is None or not str(value).strip():
        raise ChannelError(
            f"SMS template {template!r}: parameter {name!r} has no value",
            permanent=True,
            code="param-missing",
        )
    value = str(value)
    if limits.max_length is not None and len(value) > limits.max_length:
        raise ChannelError(
            f"SMS template {template!r}: parameter {name!r} is {len(value)} "
            f"characters; {limits.provider} allows at most {limits.max_length}",
            permanent=True,
            code="param-too-long",
        )
    if not limits.allow_urls and _URLISH.search(value):
        raise ChannelError(
            f"SMS template {template!r}: parameter {name!r} contains a URL or "
            f"domain; {limits.provider} rejects links in variables",
            permanent=True,
            code="param-url",
        )
    return value


def transport_error(exc: requests.RequestException, provider: str) -> ChannelError:
    """Map a `requests` failure: retry if nothing went out, OutcomeUnknown otherwise."""
    detail = f"{provider}: {_describe(exc)}"
    if isinstance(exc, requests.ConnectTimeout) or _failed_connecting(exc):
        # the TCP/TLS connection never came up, so the provider cannot have the request
        return ChannelError(f"could not reach {detail}", permanent=False, code="unreachable")
    # ReadTimeout, a reset or a half-read reply: the request was (or may have been) written
    # to the socket, so the provider may be sending the SMS right now
    return OutcomeUnknown(f"no answer after sending to {detail}", code="no-answer")


def _describe(exc: requests.RequestException) -> str:
    """The failure in words, without the URL (Aliyun's query string holds the number)."""
    reason: object = exc.args[0] if exc.args else exc
    if isinstance(reason, MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = _URL_IN_ERROR.sub("url: …", str(reason))
    return f"{type(exc).__name__}: {scrub(text)}"


def _failed_connecting(exc: requests.RequestException) -> bool:
    if not isinstance(exc, requests.ConnectionError):
        return False
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, _BEFORE_SENDING)


def http_error(response: requests.Response, what: str, now: datetime) -> ChannelError:
    """The error for an HTTP status that carries no provider error code.

    429 → retry after Retry-After; 504 (a gateway gave up waiting for the service behind
    it, which may have sent the SMS) or a 2xx without a result → OutcomeUnknown; other
    5xx → retry; 4xx → permanent.
    """
    status = response.status_code
    text = f"{what}: HTTP {status}"
    if status == 429:
        wait = retry_after(response.headers.get("Retry-After"), now)
        return ChannelError(text, permanent=False, code="http-429", retry_after=wait)
    if status == 504:
        return OutcomeUnknown(f"{text} (gateway timeout)", code="http-504")
    if 200 <= status < 300:
        # a success status without a verdict in the body: it may well have been sent
        return OutcomeUnknown(f"{text} without a result in the reply", code="no-result")
    return ChannelError(text, permanent=status < 500, code=f"http-{status}")


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0) if when.tzinfo else None


def until_beijing_midnight(now: datetime) -> float:
    """Seconds until the providers' per-number daily counters reset."""
    local = now.astimezone(BEIJING)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()


def json_body(response: requests.Response) -> dict[str, Any] | None:
    """The reply's JSON object, or None when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class SmsChannelBase:
    """The part every SMS channel shares: its name and a no-op `with` (HTTP needs no setup)."""

    name = "sms"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
