"""The Tencent channel against a real loopback server that checks the TC3 signature: what only
Tencent does (the SendSms request on the wire, SessionContext echoed, each number's own result
inside a 200). What every gateway does is in tests/test_sms_contract.py."""

from __future__ import annotations

import pytest
import requests

from pipeline.channels.base import ChannelError, OutcomeUnknown
from tests.sms_providers import TENCENT, TENCENT_SECRET_ID
from tests.sms_server import KEY, MIDNIGHT, NOW, PHONE, SmsServer

channel, message, signed, status = TENCENT.channel, TENCENT.message, TENCENT.signed, TENCENT.status


def test_it_sends_a_signed_sendsms_and_returns_the_serial_number(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(signed(status()))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "2028:f825e6b1"
    assert receipt.detail["session_context"] == KEY
    seen = server.seen[0]
    assert seen.json() == {
        "PhoneNumberSet": [f"+86{PHONE}"],
        "SmsSdkAppId": "1400006666",
        "SignName": "宝山区营商环境局",
        "TemplateId": "449739",
        "TemplateParamSet": ["某某科技", "3月9日"],
        "SessionContext": KEY,
    }
    assert seen.headers["x-tc-action"] == "SendSms"
    assert seen.headers["x-tc-version"] == "2021-01-11"
    assert seen.headers["x-tc-region"] == "ap-guangzhou"
    assert seen.headers["x-tc-timestamp"] == str(int(NOW.timestamp()))
    assert seen.headers["authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={TENCENT_SECRET_ID}/2026-03-02/sms/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
    )


@pytest.mark.parametrize(
    ("code", "wait"),
    [
        ("LimitExceeded.PhoneNumberDailyLimit", MIDNIGHT),
        ("LimitExceeded.PhoneNumberOneHourLimit", 3600.0),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", 30.0),
        ("LimitExceeded.PhoneNumberSameContentDailyLimit", MIDNIGHT),
    ],
)
def test_a_per_number_rate_limit_inside_a_200_is_retried_later(
    server: SmsServer, session: requests.Session, code: str, wait: float
) -> None:
    server.reply(status(code, "limit", serial=""))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert not caught.value.permanent and caught.value.code == code
    assert caught.value.retry_after == wait


@pytest.mark.parametrize(
    "code",
    [
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.ContainSensitiveWord",
    ],
)
def test_a_per_number_refusal_inside_a_200_is_permanent(
    server: SmsServer, session: requests.Session, code: str
) -> None:
    server.reply(status(code, f"+86{PHONE} refused", serial=""))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).send(message())
    assert caught.value.permanent and not caught.value.channel_down
    assert not isinstance(caught.value, OutcomeUnknown)
    assert PHONE not in str(caught.value)
