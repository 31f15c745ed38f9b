"""Aliyun Dysmsapi (API 2017-05-25): `SendSms`, and `QuerySendDetails` for status checks.

Requests are signed with ACS3-HMAC-SHA256 (the "V3" signature): the parameters go in the
query string of a POST with an empty body, as the official SDK sends them. `OutId` carries
the outbox key, so a message whose outcome is unknown can be found again by a status query
even without its BizId. Answers are classified by their `Code` (see `classify`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from pipeline.channels.base import Message, Receipt
from pipeline.channels.sms.common import (
    BEIJING,
    Limits,
    SmsChannelBase,
    http_error,
    json_body,
    mobile,
    prepare,
    scrub,
    transport_error,
    until_beijing_midnight,
)
from pipeline.config import SmsSettings
from pipeline.errors import ChannelDown, ChannelError, ConfigError, OutcomeUnknown

ENDPOINT = "https://dysmsapi.aliyuncs.com/"
VERSION = "2017-05-25"
ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_DOWN = {
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidTimeStamp.Expired",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
    "isv.OUT_OF_SERVICE",
    "isv.AMOUNT_NOT_ENOUGH",
    "isp.RAM_PERMISSION_DENY",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
}
_DOWN_PREFIXES = ("InvalidAccessKeyId", "InvalidSecurityToken", "Forbidden")
_RETRY = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "isv.MONTH_LIMIT_CONTROL",
    "SignatureNonceUsed",
    "isv.SYSTEM_ERROR",
}
_RETRY_PREFIXES = ("Throttling", "ServiceUnavailable", "InternalError", "isp.")


LIMITS = Limits("Aliyun", 35)
"""Aliyun: a variable of the "other" kind holds at most 35 characters; no links."""


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted key=value pairs, RFC 3986 encoded (space %20, `~` kept)."""
    pairs = sorted((_enc(k), _enc(v)) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _enc(text: str) -> str:
    return quote(text, safe="~")


def acs3_authorization(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    key_id: str,
    key_secret: str,
) -> str:
    """The Authorization header of an ACS3-HMAC-SHA256 request.

    Signed: `host`, `content-type` and every `x-acs-*` header, names lower-cased and
    sorted, values trimmed. Canonical request → SHA-256 → HMAC-SHA256 with the secret.
    """
    signed = {
        k.lower(): v.strip()
        for k, v in headers.items()
        if k.lower() in ("host", "content-type") or k.lower().startswith("x-acs-")
    }
    names = sorted(signed)
    canonical = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={key_id},SignedHeaders={';'.join(names)},Signature={signature}"


def classify(code: str, text: str, now: datetime) -> ChannelError:
    """The ChannelError for an Aliyun error `Code` (anything but "OK")."""
    message = f"Aliyun SMS refused: {code}: {scrub(text)}"
    if code in _DOWN or code.startswith(_DOWN_PREFIXES):
        # credentials, account or the channel-wide signature name: every send would fail
        return ChannelDown(message, code=code)
    if code in _RETRY or code.startswith(_RETRY_PREFIXES):
        return ChannelError(message, permanent=False, code=code, retry_after=_wait(code, text, now))
    # bad number, blacklist, template, parameters (isv.*): the same message fails again
    return ChannelError(message, permanent=True, code=code)


def _wait(code: str, text: str, now: datetime) -> float | None:
    """Aliyun flow control is per number per minute / hour / day; its message says which."""
    if code == "isv.DAY_LIMIT_CONTROL" or "天级" in text:
        return until_beijing_midnight(now)
    if "小时级" in text:
        return 3600.0
    if "分钟级" in text:
        return 60.0
    return None


class AliyunSms(SmsChannelBase):
    def __init__(
        self,
        settings: SmsSettings,
        session: requests.Session,
        clock_now: Callable[[], datetime],
        limits: Limits = LIMITS,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if not settings.access_key_id or not settings.access_key_secret:
            raise ConfigError("sms.provider aliyun needs sms.access_key_id and access_key_secret")
        self.settings = settings
        self.session = session
        self.now = clock_now
        self.limits = limits
        self.nonce = nonce

    def send(self, message: Message) -> Receipt:
        request = prepare(message, self.settings, self.limits)
        data = self._call(
            "SendSms",
            {
                "PhoneNumbers": request.phone,
                "SignName": self.settings.sign_name,
                "TemplateCode": request.template_id,
                "OutId": request.key,
                "TemplateParam": json.dumps(request.params, ensure_ascii=False),
            },
        )
        return Receipt(
            provider_id=str(data.get("BizId") or "") or None,
            detail={"provider": "aliyun", "request_id": data.get("RequestId")},
        )

    def check(self, message: Message, provider_id: str | None) -> Receipt | None:
        """Look the message up (by BizId, else by OutId) on today's and yesterday's list.

        A failed query (rate limit, network, credentials) does not mean the SMS failed: it
        raises OutcomeUnknown, keeping the error's code and `channel_down`.
        """
        phone = mobile(message.recipient)
        today = self.now().astimezone(BEIJING).date()
        for day in (today, today - timedelta(days=1)):
            try:
                detail = self._find(message, phone, provider_id, day.strftime("%Y%m%d"))
            except ChannelError as exc:
                raise _still_unknown(exc) from None
            if detail is not None:
                return _status(detail, provider_id)
        return None

    def _find(
        self, message: Message, phone: str, biz_id: str | None, send_date: str
    ) -> dict[str, Any] | None:
        params = {"PhoneNumber": phone, "SendDate": send_date, "PageSize": "50", "CurrentPage": "1"}
        if biz_id:
            params["BizId"] = biz_id
        data = self._call("QuerySendDetails", params)
        details = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        mine = [d for d in details if biz_id or d.get("OutId") == message.key]
        return mine[0] if mine else None

    def _call(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        url = self.settings.url or ENDPOINT
        try:
            response = self.session.post(
                url,
                params=canonical_query(params),
                headers=self._headers(action, url, params),
                timeout=self.settings.timeout,
            )
        except requests.RequestException as exc:
            raise transport_error(exc, f"Aliyun {action}") from None
        return self._answer(action, response)

    def _headers(self, action: str, url: str, params: dict[str, str]) -> dict[str, str]:
        parts = urlsplit(url)
        headers = {
            "host": parts.netloc,
            "x-acs-action": action,
            "x-acs-version": VERSION,
            "x-acs-date": self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": self.nonce(),
            "x-acs-content-sha256": EMPTY_SHA256,
        }
        headers["Authorization"] = acs3_authorization(
            "POST",
            parts.path or "/",
            params,
            headers,
            EMPTY_SHA256,
            self.settings.access_key_id or "",
            self.settings.access_key_secret or "",
        )
        headers["Accept"] = "application/json"
        return headers

    def _answer(self, action: str, response: requests.Response) -> dict[str, Any]:
        data = json_body(response) or {}
        code = str(data.get("Code") or "")
        if code == "OK":
            return data
        if code:
            raise classify(code, str(data.get("Message") or ""), self.now())
        raise http_error(response, f"Aliyun {action}", self.now())


def _still_unknown(error: ChannelError) -> OutcomeUnknown:
    if isinstance(error, OutcomeUnknown):
        return error
    return OutcomeUnknown(
        f"status query failed, outcome still unknown: {error}",
        error.code,
        channel_down=error.channel_down,
        retry_after=error.retry_after,
    )


def _status(detail: dict[str, Any], provider_id: str | None) -> Receipt | None:
    """SendStatus 3 delivered → Receipt; 2 failed → permanent error; 1 waiting → None."""
    status = int(detail.get("SendStatus") or 0)
    if status == 3:
        return Receipt(
            provider_id=provider_id,
            detail={
                "provider": "aliyun",
                "receive_date": detail.get("ReceiveDate"),
                "err_code": detail.get("ErrCode"),
            },
        )
    if status == 2:
        code = str(detail.get("ErrCode") or "failed")
        raise ChannelError(f"Aliyun SMS was not delivered: {code}", permanent=True, code=code)
    return None
