"""The Tencent channel against a real loopback server that checks the TC3 signature."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pipeline.channels.base import ChannelError, Message, OutcomeUnknown
from pipeline.channels.sms.tencent import TencentSms, tc3_authorization
from pipeline.config import SmsSettings
from tests.sms_server import (
    KEY,
    MIDNIGHT,
    NOW,
    PHONE,
    Reply,
    Seen,
    SmsServer,
    json_reply,
    refused_url,
    unanswered_url,
)

SECRET_ID = "AKIDTestSecretId"
SECRET_KEY = "tencent-test-key"


def channel(url: str, session: requests.Session, **overrides: Any) -> TencentSms:
    values: dict[str, Any] = {
        "provider": "tencent", "url": url, "secret_id": SECRET_ID, "secret_key": SECRET_KEY,
        "sdk_app_id": "1400006666", "region": "ap-guangzhou", "sign_name": "宝山区营商环境局",
        "timeout": 2.0,
        "templates": {"notice": {"id": "449739", "params": ["company", "deadline"]}},
    } | overrides  # fmt: skip
    return TencentSms(SmsSettings(**values), session, lambda: NOW)


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "key": KEY, "channel": "sms", "recipient": PHONE, "sms_template": "notice",
        "sms_params": {"deadline": "3月9日", "company": "某某科技"},  # order is the template's
    } | overrides  # fmt: skip
    return Message(**values)


def signed(reply: Reply) -> Any:
    """Tencent's side: answer `reply` only if the signature over the wire bytes checks out."""

    def respond(seen: Seen) -> Reply:
        expected = tc3_authorization(SECRET_ID, SECRET_KEY, seen.headers["host"], seen.body,
                                     int(seen.headers["x-tc-timestamp"]),
                                     content_type=seen.headers["content-type"])  # fmt: skip
        if seen.headers.get("authorization") != expected:
            return error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        return reply

    return respond


def status(code: str = "Ok", text: str = "send success", serial: str = "2028:f825e6b1") -> Reply:
    entry = {"SerialNo": serial, "PhoneNumber": f"+86{PHONE}", "Fee": 1, "SessionContext": KEY,
             "Code": code, "Message": text, "IsoCode": "CN"}  # fmt: skip
    return json_reply({"Response": {"SendStatusSet": [entry], "RequestId": "R-1"}})


def error(code: str, text: str = "") -> Reply:
    return json_reply({"Response": {"Error": {"Code": code, "Message": text}, "RequestId": "R-2"}})


def test_it_sends_a_signed_sendsms_and_returns_the_serial_number(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(signed(status()))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "2028:f825e6b1"
    assert receipt.detail["session_context"] == KEY
    seen = server.seen[0]
    assert seen.json() == {"PhoneNumberSet": [f"+86{PHONE}"], "SmsSdkAppId": "1400006666",
                           "SignName": "宝山区营商环境局", "TemplateId": "449739",
                           "TemplateParamSet": ["某某科技", "3月9日"], "SessionContext": KEY}  # fmt: skip
    assert seen.headers["x-tc-action"] == "SendSms"
    assert seen.headers["x-tc-version"] == "2021-01-11"
    assert seen.headers["x-tc-region"] == "ap-guangzhou"
    assert seen.headers["x-tc-timestamp"] == str(int(NOW.timestamp()))
    assert seen.headers["authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2026-03-02/sms/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
    )


@pytest.mark.parametrize(("code", "wait"), [
    ("LimitExceeded.PhoneNumberDailyLimit", MIDNIGHT),
    ("LimitExceeded.PhoneNumberOneHourLimit", 3600.0),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", 30.0),
    ("LimitExceeded.PhoneNumberSameContentDailyLimit", MIDNIGHT),
])  # fmt: skip
def test_a_per_number_rate_limit_inside_a_200_is_retried_later(
    server: SmsServer, session: requests.Session, code: str, wait: float
) -> None:
    server.reply(status(code, "limit", serial=""))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent and caught.value.code == code
    assert caught.value.retry_after == wait


@pytest.mark.parametrize("code", [
    "InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.ContainSensitiveWord",
])  # fmt: skip
def test_a_per_number_refusal_inside_a_200_is_permanent(server: SmsServer,
                                                        session: requests.Session, code: str) -> None:  # fmt: skip
    server.reply(status(code, f"+86{PHONE} refused", serial=""))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert caught.value.permanent and not caught.value.channel_down
    assert not isinstance(caught.value, OutcomeUnknown)
    assert PHONE not in str(caught.value)


@pytest.mark.parametrize(("code", "permanent", "down"), [
    ("AuthFailure.SecretIdNotFound", True, True),
    ("AuthFailure.SignatureExpire", True, True),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", True, True),
    ("FailedOperation.InsufficientBalanceInSmsPackage", True, True),
    ("FailedOperation.SignatureIncorrectOrUnapproved", True, True),
    ("FailedOperation.TemplateIncorrectOrUnapproved", True, False),
    ("InvalidParameterValue.TemplateParameterLengthLimit", True, False),
    ("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", True, False),
    ("RequestLimitExceeded", False, False),
    ("LimitExceeded.AppDailyLimit", False, False),
    ("InternalError.OtherError", False, False),
])  # fmt: skip
def test_a_request_wide_error_inside_a_200_is_classified(
    server: SmsServer, session: requests.Session, code: str, permanent: bool, down: bool
) -> None:
    server.reply(error(code, "refused"))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert (caught.value.permanent, caught.value.channel_down) == (permanent, down)
    assert not isinstance(caught.value, OutcomeUnknown)


def test_a_wrong_key_fails_the_servers_signature_check(server: SmsServer,
                                                       session: requests.Session) -> None:  # fmt: skip
    server.reply(signed(status()))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session, secret_key="wrong").send(message())
    assert caught.value.code == "AuthFailure.SignatureFailure" and caught.value.channel_down


@pytest.mark.parametrize("reply", [
    error("InternalError.Timeout"), Reply(504), Reply(200, delay=1.0),
    json_reply({"Response": {"SendStatusSet": [], "RequestId": "R"}}),
])  # fmt: skip
def test_timeouts_after_sending_are_unknown_outcomes(server: SmsServer,
                                                     session: requests.Session, reply: Reply) -> None:  # fmt: skip
    server.reply(reply)
    with pytest.raises(OutcomeUnknown):
        channel(server.url, session, timeout=0.2).send(message())
    assert len(server.seen) == 1


@pytest.mark.parametrize("reply", [Reply(502), Reply(503), Reply(429)])
def test_http_errors_of_the_gateway_are_retryable(server: SmsServer,
                                                  session: requests.Session, reply: Reply) -> None:  # fmt: skip
    server.reply(reply)
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent


def test_a_connect_timeout_is_retryable_because_nothing_was_sent(
    session: requests.Session,
) -> None:
    with unanswered_url() as url, pytest.raises(ChannelError) as caught:
        channel(url, session, timeout=0.2).send(message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.code == "unreachable"


def test_connection_refused_is_retryable(session: requests.Session) -> None:
    with pytest.raises(ChannelError) as caught:
        channel(refused_url(), session).send(message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)


@pytest.mark.parametrize(("params", "match"), [
    ({"company": "上海某某科技有限公司分公司", "deadline": "3月9日"},
     "'company' is 13 characters; Tencent allows at most 12"),
    ({"company": "某某", "deadline": "www.gsxt.gov"}, "'deadline' contains a URL"),
    ({"company": "某某", "deadline": "gsxt.gov.cn"}, "'deadline' contains a URL"),
])  # fmt: skip
def test_parameters_beyond_the_limits_are_refused_before_sending(
    server: SmsServer, session: requests.Session, params: dict[str, str], match: str
) -> None:
    with pytest.raises(ChannelError, match=match) as caught:
        channel(server.url, session).send(message(sms_params=params))
    assert caught.value.permanent
    assert server.seen == []
