"""Tencent Cloud SMS `SendSms` (API 2021-01-11), signed with TC3-HMAC-SHA256.

Variables are positional (`TemplateParamSet`, in the order of the template's `params`);
`SessionContext` carries the outbox key and is echoed back. A 200 reply holds either
`Response.Error` (the whole request failed) or `Response.SendStatusSet`, one entry per
number with its own `Code`: "Ok", or a per-number failure (daily cap, blacklist, bad
number) that `classify` turns into the right ChannelError.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from pipeline.channels.base import Message, Receipt
from pipeline.channels.sms.common import (
    Limits,
    SmsChannelBase,
    SmsRequest,
    http_error,
    json_body,
    prepare,
    scrub,
    transport_error,
    until_beijing_midnight,
)
from pipeline.config import SmsSettings
from pipeline.errors import ChannelDown, ChannelError, ConfigError, OutcomeUnknown

ENDPOINT = "https://sms.tencentcloudapi.com/"
SERVICE = "sms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
LIMITS = Limits("Tencent", 12)
"""Tencent: at most 12 characters per variable; no links."""

_DOWN_PREFIXES = ("AuthFailure", "UnauthorizedOperation")
# no balance, or the channel-wide signature name is not approved: every send would fail
_DOWN = {
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "FailedOperation.SignatureIncorrectOrUnapproved",
}
_RETRY_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError")
_UNKNOWN = {"InternalError.Timeout"}
"""Tencent timed out handing the SMS on: it may still arrive, like our own read timeout."""
_WAIT = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
}


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The Authorization header of a TC3-HMAC-SHA256 POST to `/` (signed: content-type;host)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type.lower()}\nhost:{host.lower()}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    key = _hmac(f"TC3{secret_key}".encode(), date)
    for part in (service, "tc3_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
        f"Signature={signature}"
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def classify(code: str, text: str, now: datetime) -> ChannelError:
    """The ChannelError for a Tencent error code (request-wide or per number)."""
    message = f"Tencent SMS refused: {code}: {scrub(text)}"
    if code in _DOWN or code.startswith(_DOWN_PREFIXES):
        return ChannelDown(message, code=code)
    if code in _UNKNOWN:
        return OutcomeUnknown(message, code=code)
    if code.startswith(_RETRY_PREFIXES):
        wait = until_beijing_midnight(now) if "DailyLimit" in code else _WAIT.get(code)
        return ChannelError(message, permanent=False, code=code, retry_after=wait)
    # InvalidParameterValue.*, blacklist, template or parameter errors: fails again
    return ChannelError(message, permanent=True, code=code)


class TencentSms(SmsChannelBase):
    def __init__(
        self,
        settings: SmsSettings,
        session: requests.Session,
        clock_now: Callable[[], datetime],
        limits: Limits = LIMITS,
    ) -> None:
        if not (settings.secret_id and settings.secret_key and settings.sdk_app_id):
            raise ConfigError("sms.provider tencent needs sms.secret_id, secret_key and sdk_app_id")
        self.settings = settings
        self.session = session
        self.now = clock_now
        self.limits = limits

    def send(self, message: Message) -> Receipt:
        request = prepare(message, self.settings, self.limits)
        url = self.settings.url or ENDPOINT
        body = self._body(request)
        try:
            response = self.session.post(
                url, data=body, headers=self._headers(url, body), timeout=self.settings.timeout
            )
        except requests.RequestException as exc:
            raise transport_error(exc, "Tencent SendSms") from None
        return self._receipt(response)

    def _body(self, request: SmsRequest) -> bytes:
        return json.dumps(
            {
                "PhoneNumberSet": [f"+86{request.phone}"],
                "SmsSdkAppId": self.settings.sdk_app_id,
                "SignName": self.settings.sign_name,
                "TemplateId": request.template_id,
                "TemplateParamSet": list(request.params.values()),
                "SessionContext": request.key,
            },
            ensure_ascii=False,
        ).encode()

    def _headers(self, url: str, body: bytes) -> dict[str, str]:
        host = urlsplit(url).netloc
        timestamp = int(self.now().timestamp())
        return {
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": VERSION,
            "X-TC-Region": self.settings.region,
            "X-TC-Timestamp": str(timestamp),
            "Authorization": tc3_authorization(
                self.settings.secret_id or "", self.settings.secret_key or "", host, body, timestamp
            ),
        }

    def _receipt(self, response: requests.Response) -> Receipt:
        status = response.status_code
        if status != 200:
            raise http_error(response, "Tencent SendSms", self.now())
        reply: dict[str, Any] = (json_body(response) or {}).get("Response") or {}
        error = reply.get("Error")
        if isinstance(error, dict):
            raise classify(str(error.get("Code")), str(error.get("Message") or ""), self.now())
        statuses = reply.get("SendStatusSet") or []
        if not statuses:
            # a 200 that says nothing about our number: it may or may not have been sent
            raise OutcomeUnknown(
                "Tencent SendSms: a 200 reply without a send status", code="no-status"
            )
        return self._per_number(statuses[0], reply.get("RequestId"))

    def _per_number(self, entry: dict[str, Any], request_id: Any) -> Receipt:
        code = str(entry.get("Code") or "")
        if code != "Ok":
            raise classify(code, str(entry.get("Message") or ""), self.now())
        return Receipt(
            provider_id=str(entry.get("SerialNo") or "") or None,
            detail={
                "provider": "tencent",
                "request_id": request_id,
                "fee": entry.get("Fee"),
                "session_context": entry.get("SessionContext"),
            },
        )
