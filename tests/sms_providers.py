"""The three SMS gateways as the tests drive them, one object each: `ALIYUN`, `TENCENT`,
`WEBHOOK`.

Each builds its channel against a loopback `tests.sms_server.SmsServer`, makes the message
it sends, and plays the provider's side: the replies it gives and the signature check it
makes (a responder that answers only when the request's signature verifies). The contract
suite (tests/test_sms_contract.py) runs the same tests over all three; the provider files
(tests/test_sms_<provider>.py) test what only one of them does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import requests

from pipeline.channels.base import Message
from pipeline.channels.sms.aliyun import AliyunSms, acs3_authorization
from pipeline.channels.sms.tencent import TencentSms, tc3_authorization
from pipeline.channels.sms.webhook import WebhookSms
from pipeline.config import SmsSettings
from tests.sms_server import KEY, NOW, PHONE, Reply, Responder, Seen, json_reply

ALIYUN_KEY_ID = "LTAI5tTestKeyId"
ALIYUN_KEY_SECRET = "aliyun-test-secret"
TENCENT_SECRET_ID = "AKIDTestSecretId"
TENCENT_SECRET_KEY = "tencent-test-key"
WEBHOOK_SECRET = "webhook-s3cret"


class Provider:
    """What the contract suite needs to know of a gateway."""

    name: str
    secret_setting: str
    """The `sms.*` setting holding the secret the gateway checks the signature with."""
    signature_failure: str
    """The error code of a request whose signature the gateway rejects."""
    max_length: int | None
    """Characters allowed per template variable (None: no limit)."""
    receipt_id: str
    """The provider id in the receipt of `ok()`."""

    def channel(self, url: str, session: requests.Session, **overrides: Any) -> Any:
        raise NotImplementedError

    def message(self, **overrides: Any) -> Message:
        raise NotImplementedError

    def signed(self, reply: Reply) -> Responder:
        """The gateway's side: answer `reply` only if the request's signature checks out."""
        raise NotImplementedError

    def ok(self) -> Reply:
        """A successful send, with `receipt_id` as the provider's id."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


def _message(**values: Any) -> Message:
    base: dict[str, Any] = {
        "key": KEY,
        "channel": "sms",
        "recipient": PHONE,
        "sms_template": "notice",
    }
    return Message(**(base | values))


# --------------------------------------------------------------------------- Aliyun


class Aliyun(Provider):
    name = "aliyun"
    secret_setting = "access_key_secret"
    signature_failure = "SignatureDoesNotMatch"
    max_length = 35
    receipt_id = "900619746936498440^0"

    def channel(self, url: str, session: requests.Session, **overrides: Any) -> AliyunSms:
        values: dict[str, Any] = {
            "provider": "aliyun",
            "url": url,
            "access_key_id": ALIYUN_KEY_ID,
            "access_key_secret": ALIYUN_KEY_SECRET,
            "sign_name": "宝山区营商环境局",
            "timeout": 2.0,
            "templates": {"notice": {"id": "SMS_465", "params": ["company", "deadline"]}},
        } | overrides
        return AliyunSms(SmsSettings(**values), session, lambda: NOW, nonce=lambda: "nonce-1")

    def message(self, **overrides: Any) -> Message:
        params = {"company": "上海某某科技有限公司", "deadline": "2026年3月9日"}
        return _message(**({"sms_params": params} | overrides))

    def signed(self, reply: Reply) -> Responder:
        def respond(seen: Seen) -> Reply:
            auth = seen.headers.get("authorization", "")
            match = re.search(r"SignedHeaders=([^,]+)", auth)
            names = match.group(1).split(";") if match else []
            payload = hashlib.sha256(seen.body).hexdigest()
            expected = acs3_authorization(
                seen.method,
                seen.path,
                seen.query,
                {n: seen.headers.get(n, "") for n in names},
                payload,
                ALIYUN_KEY_ID,
                ALIYUN_KEY_SECRET,
            )
            if auth != expected or seen.headers.get("x-acs-content-sha256") != payload:
                return json_reply({"Code": "SignatureDoesNotMatch", "Message": "no"}, status=400)
            return reply

        return respond

    def ok(self, biz_id: str = receipt_id) -> Reply:
        return json_reply({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "R-1"})

    @staticmethod
    def refusal(code: str, text: str = "", status: int = 200) -> Reply:
        return json_reply({"Code": code, "Message": text, "RequestId": "R-2"}, status=status)


# --------------------------------------------------------------------------- Tencent


class Tencent(Provider):
    name = "tencent"
    secret_setting = "secret_key"
    signature_failure = "AuthFailure.SignatureFailure"
    max_length = 12
    receipt_id = "2028:f825e6b1"

    def channel(self, url: str, session: requests.Session, **overrides: Any) -> TencentSms:
        values: dict[str, Any] = {
            "provider": "tencent",
            "url": url,
            "secret_id": TENCENT_SECRET_ID,
            "secret_key": TENCENT_SECRET_KEY,
            "sdk_app_id": "1400006666",
            "region": "ap-guangzhou",
            "sign_name": "宝山区营商环境局",
            "timeout": 2.0,
            "templates": {"notice": {"id": "449739", "params": ["company", "deadline"]}},
        } | overrides
        return TencentSms(SmsSettings(**values), session, lambda: NOW)

    def message(self, **overrides: Any) -> Message:
        params = {"deadline": "3月9日", "company": "某某科技"}  # order is the template's
        return _message(**({"sms_params": params} | overrides))

    def signed(self, reply: Reply) -> Responder:
        def respond(seen: Seen) -> Reply:
            expected = tc3_authorization(
                TENCENT_SECRET_ID,
                TENCENT_SECRET_KEY,
                seen.headers["host"],
                seen.body,
                int(seen.headers["x-tc-timestamp"]),
                content_type=seen.headers["content-type"],
            )
            if seen.headers.get("authorization") != expected:
                return self.error(
                    "AuthFailure.SignatureFailure",
                    "The provided credentials could not be validated.",
                )
            return reply

        return respond

    def ok(self) -> Reply:
        return self.status()

    @staticmethod
    def status(code: str = "Ok", text: str = "send success", serial: str = receipt_id) -> Reply:
        """A 200 with one entry in SendStatusSet: the outcome for our number."""
        entry = {
            "SerialNo": serial,
            "PhoneNumber": f"+86{PHONE}",
            "Fee": 1,
            "SessionContext": KEY,
            "Code": code,
            "Message": text,
            "IsoCode": "CN",
        }
        return json_reply({"Response": {"SendStatusSet": [entry], "RequestId": "R-1"}})

    @staticmethod
    def error(code: str, text: str = "") -> Reply:
        """A 200 whose Response.Error fails the whole request."""
        return json_reply(
            {"Response": {"Error": {"Code": code, "Message": text}, "RequestId": "R-2"}}
        )


# --------------------------------------------------------------------------- webhook


class Webhook(Provider):
    name = "webhook"
    secret_setting = "secret"
    signature_failure = "http-401"
    max_length = None
    receipt_id = "gw-42"

    def settings(self, url: str, **overrides: Any) -> SmsSettings:
        values: dict[str, Any] = {
            "provider": "webhook",
            "url": url,
            "secret": WEBHOOK_SECRET,
            "timeout": 2.0,
            "templates": {"notice": {"id": "N1", "params": ["company", "deadline"]}},
        } | overrides
        return SmsSettings(**values)

    def channel(self, url: str, session: requests.Session, **overrides: Any) -> WebhookSms:
        return WebhookSms(self.settings(url, **overrides), session, lambda: NOW)

    def message(self, **overrides: Any) -> Message:
        values = {
            "text": "请于3月9日前办理信用修复",
            "sms_params": {"company": "某某科技", "deadline": "3月9日"},
        }
        return _message(**(values | overrides))

    def signed(self, reply: Reply) -> Responder:
        """A gateway that answers `reply` only when X-Signature matches the body."""

        def respond(seen: Seen) -> Reply:
            expected = hmac.new(WEBHOOK_SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, seen.headers.get("x-signature", "")):
                return json_reply({"error": "bad signature"}, status=401)
            return reply

        return respond

    def ok(self) -> Reply:
        return json_reply({"id": self.receipt_id})


ALIYUN = Aliyun()
TENCENT = Tencent()
WEBHOOK = Webhook()
PROVIDERS = {p.name: p for p in (ALIYUN, TENCENT, WEBHOOK)}
