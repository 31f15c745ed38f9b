"""What every SMS gateway must do, run against each of them (`provider`: Aliyun, Tencent and
the webhook), each against a real loopback server playing that provider
(tests/sms_providers.py).

A send ends in one of the outcomes of `pipeline.channels.base`:

- a Receipt carrying the provider's id;
- ChannelError(permanent=False): retry later (rate limits, after the wait the provider
  asked for; server errors; nothing sent because the connection never came up);
- ChannelError(permanent=True): the same message fails again (bad number, template) — and
  with `channel_down` when no message can go out (credentials, account, signature);
- OutcomeUnknown: the request went out and the answer does not say what became of it.

A message that breaks the provider's rules is refused before anything is sent. No error
shows a whole phone number or a secret.

Tables of replies list what each provider answers for a case; what only one provider does
(its wire format, Aliyun's status query, Tencent's per-number results inside a 200) is
tested in tests/test_sms_<provider>.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pipeline.channels.base import ChannelError, OutcomeUnknown
from tests.sms_providers import ALIYUN, PROVIDERS, TENCENT, WEBHOOK, Provider
from tests.sms_server import (
    MIDNIGHT,
    PHONE,
    Reply,
    SmsServer,
    json_reply,
    refused_url,
    unanswered_url,
)

aliyun, tencent, webhook = ALIYUN.name, TENCENT.name, WEBHOOK.name


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each gateway in turn; tables of cases pick theirs with `indirect=["provider"]`."""
    return PROVIDERS[request.param]


def failure(
    provider: Provider,
    server: SmsServer,
    session: requests.Session,
    reply: Reply | None = None,
    **overrides: Any,
) -> ChannelError:
    """The error of sending the provider's message, the server answering `reply`."""
    if reply is not None:
        server.reply(reply)
    with pytest.raises(ChannelError) as caught:
        provider.channel(server.url, session, **overrides).send(provider.message())
    return caught.value


# --------------------------------------------------------------------------- sent


def test_a_signed_send_returns_the_providers_id(
    provider: Provider, server: SmsServer, session: requests.Session
) -> None:
    server.reply(provider.signed(provider.ok()))
    receipt = provider.channel(server.url, session).send(provider.message())
    assert receipt.provider_id == provider.receipt_id
    assert len(server.seen) == 1


def test_a_wrong_secret_fails_the_servers_signature_check_and_takes_the_channel_down(
    provider: Provider, server: SmsServer, session: requests.Session
) -> None:
    wrong = {provider.secret_setting: "wrong"}
    error = failure(provider, server, session, provider.signed(provider.ok()), **wrong)
    assert error.permanent and error.channel_down
    assert error.code == provider.signature_failure
    assert "wrong" not in str(error)


# --------------------------------------------------------------------------- retry later

refusal, error = ALIYUN.refusal, TENCENT.error
RETRY = [
    pytest.param(
        aliyun,
        refusal("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
        60.0,
        id="aliyun-minute-flow-control",
    ),
    pytest.param(
        aliyun,
        refusal("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"),
        MIDNIGHT,
        id="aliyun-day-flow-control",
    ),
    pytest.param(
        aliyun, refusal("isv.DAY_LIMIT_CONTROL", "触发日发送限额"), MIDNIGHT, id="aliyun-day-limit"
    ),
    pytest.param(
        aliyun,
        refusal("Throttling.User", "Request was denied due to user flow control.", 400),
        None,
        id="aliyun-throttling",
    ),
    pytest.param(aliyun, refusal("isp.SYSTEM_ERROR"), None, id="aliyun-system-error"),
    pytest.param(aliyun, Reply(500, b"upstream failed"), None, id="aliyun-500"),
    pytest.param(aliyun, refusal("ServiceUnavailable", "busy", 503), None, id="aliyun-503"),
    pytest.param(
        tencent, error("RequestLimitExceeded", "refused"), None, id="tencent-request-limit"
    ),
    pytest.param(
        tencent,
        error("LimitExceeded.AppDailyLimit", "refused"),
        MIDNIGHT,
        id="tencent-app-daily-limit",
    ),
    pytest.param(
        tencent, error("InternalError.OtherError", "refused"), None, id="tencent-internal-error"
    ),
    pytest.param(tencent, Reply(502), None, id="tencent-502"),
    pytest.param(tencent, Reply(503), None, id="tencent-503"),
    pytest.param(tencent, Reply(429), None, id="tencent-429"),
    pytest.param(webhook, Reply(429, headers={"Retry-After": "30"}), 30.0, id="webhook-429"),
    pytest.param(webhook, Reply(500), None, id="webhook-500"),
    pytest.param(webhook, Reply(502), None, id="webhook-502"),
    pytest.param(webhook, Reply(503), None, id="webhook-503"),
]


@pytest.mark.parametrize(("provider", "reply", "wait"), RETRY, indirect=["provider"])
def test_rate_limits_and_server_errors_are_retried_later(
    provider: Provider,
    server: SmsServer,
    session: requests.Session,
    reply: Reply,
    wait: float | None,
) -> None:
    error = failure(provider, server, session, reply)
    assert not error.permanent and not error.channel_down
    assert not isinstance(error, OutcomeUnknown)
    assert error.retry_after == wait


def test_connection_refused_is_retryable(provider: Provider, session: requests.Session) -> None:
    with pytest.raises(ChannelError) as caught:
        provider.channel(refused_url(), session).send(provider.message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.code == "unreachable"
    assert PHONE not in str(caught.value)


def test_a_connect_timeout_is_retryable_because_nothing_was_sent(
    provider: Provider, session: requests.Session
) -> None:
    with unanswered_url() as url, pytest.raises(ChannelError) as caught:
        provider.channel(url, session, timeout=0.2).send(provider.message())
    assert not caught.value.permanent and not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.code == "unreachable"


# --------------------------------------------------------------------------- permanent

PERMANENT = [
    *(
        pytest.param(aliyun, refusal(code, f"号码 {PHONE} 不可用"), code, id=f"aliyun-{code}")
        for code in (
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.BLACK_KEY_CONTROL_LIMIT",
            "isv.SMS_TEMPLATE_ILLEGAL",
            "isv.TEMPLATE_MISSING_PARAMETERS",
            "isv.INVALID_PARAMETERS",
            "isv.PARAM_LENGTH_LIMIT",
        )
    ),
    *(
        pytest.param(tencent, error(code, f"号码 {PHONE} 不可用"), code, id=f"tencent-{code}")
        for code in (
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "InvalidParameterValue.TemplateParameterLengthLimit",
            "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        )
    ),
    pytest.param(webhook, Reply(422), "http-422", id="webhook-422"),
]


@pytest.mark.parametrize(("provider", "reply", "code"), PERMANENT, indirect=["provider"])
def test_bad_number_blacklist_and_template_errors_are_permanent(
    provider: Provider, server: SmsServer, session: requests.Session, reply: Reply, code: str
) -> None:
    error = failure(provider, server, session, reply)
    assert error.permanent and not error.channel_down
    assert not isinstance(error, OutcomeUnknown)
    assert error.code == code
    assert PHONE not in str(error)
    if PHONE.encode() in reply.body:  # the provider's text is shown, its number masked
        assert "138****5678" in str(error)


DOWN = [
    *(
        pytest.param(aliyun, refusal(code, "denied", status), id=f"aliyun-{code}")
        for code, status in (
            ("InvalidAccessKeyId.NotFound", 404),
            ("SignatureDoesNotMatch", 400),
            ("isv.SMS_SIGNATURE_ILLEGAL", 200),
            ("isv.AMOUNT_NOT_ENOUGH", 200),
        )
    ),
    *(
        pytest.param(tencent, error(code, "refused"), id=f"tencent-{code}")
        for code in (
            "AuthFailure.SecretIdNotFound",
            "AuthFailure.SignatureExpire",
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "FailedOperation.InsufficientBalanceInSmsPackage",
            "FailedOperation.SignatureIncorrectOrUnapproved",
        )
    ),
    pytest.param(webhook, Reply(401), id="webhook-401"),
    pytest.param(webhook, Reply(403), id="webhook-403"),
]


@pytest.mark.parametrize(("provider", "reply"), DOWN, indirect=["provider"])
def test_auth_account_and_signature_failures_take_the_channel_down(
    provider: Provider, server: SmsServer, session: requests.Session, reply: Reply
) -> None:
    error = failure(provider, server, session, reply)
    assert error.permanent and error.channel_down
    assert not isinstance(error, OutcomeUnknown)


# --------------------------------------------------------------------------- unknown outcome


def test_no_answer_within_the_timeout_is_an_unknown_outcome(
    provider: Provider, server: SmsServer, session: requests.Session
) -> None:
    error = failure(provider, server, session, Reply(200, delay=1.0), timeout=0.2)
    assert isinstance(error, OutcomeUnknown)
    assert len(server.seen) == 1  # it did go out
    assert PHONE not in str(error)  # Aliyun's URL holds it; the message must not
    assert error.__cause__ is None


UNKNOWN = [
    *(pytest.param(p.name, Reply(504), id=f"{p.name}-504") for p in PROVIDERS.values()),
    *(pytest.param(p.name, Reply(reset=True), id=f"{p.name}-reset") for p in PROVIDERS.values()),
    pytest.param(aliyun, Reply(200, b"<html>proxy page</html>"), id="aliyun-200-without-a-code"),
    pytest.param(tencent, error("InternalError.Timeout"), id="tencent-internal-timeout"),
    pytest.param(
        tencent,
        json_reply({"Response": {"SendStatusSet": [], "RequestId": "R"}}),
        id="tencent-200-without-a-status",
    ),
]


@pytest.mark.parametrize(("provider", "reply"), UNKNOWN, indirect=["provider"])
def test_an_answer_that_may_hide_a_sent_sms_is_an_unknown_outcome(
    provider: Provider, server: SmsServer, session: requests.Session, reply: Reply
) -> None:
    """A gateway timeout (504), a connection closed after sending, a reply without a verdict."""
    error = failure(provider, server, session, reply, timeout=0.2)
    assert isinstance(error, OutcomeUnknown)
    assert len(server.seen) == 1


# --------------------------------------------------------------------------- refused before sending

URL = "'deadline' contains a URL"
LIMITS = [
    pytest.param(
        aliyun,
        {"company": "上海" * 18, "deadline": "3月9日"},
        "'company' is 36 characters; Aliyun allows at most 35",
        id="aliyun-too-long",
    ),
    pytest.param(
        aliyun, {"company": "某某", "deadline": "见 https://x.cn/a"}, URL, id="aliyun-url"
    ),
    pytest.param(
        tencent,
        {"company": "上海某某科技有限公司分公司", "deadline": "3月9日"},
        "'company' is 13 characters; Tencent allows at most 12",
        id="tencent-too-long",
    ),
    pytest.param(tencent, {"company": "某某", "deadline": "www.gsxt.gov"}, URL, id="tencent-www"),
    pytest.param(tencent, {"company": "某某", "deadline": "gsxt.gov.cn"}, URL, id="tencent-domain"),
    *(
        pytest.param(
            p.name, {"company": "某某科技"}, "'deadline' has no value", id=f"{p.name}-missing"
        )
        for p in PROVIDERS.values()
    ),
]


@pytest.mark.parametrize(("provider", "params", "match"), LIMITS, indirect=["provider"])
def test_parameters_beyond_the_limits_are_refused_before_sending(
    provider: Provider,
    server: SmsServer,
    session: requests.Session,
    params: dict[str, str],
    match: str,
) -> None:
    with pytest.raises(ChannelError, match=match) as caught:
        provider.channel(server.url, session).send(provider.message(sms_params=params))
    assert caught.value.permanent
    assert server.seen == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sms_template": "reminder"}, "template-unknown"),
        ({"recipient": "021-61234567"}, "invalid-number"),
    ],
)
def test_an_unknown_template_or_a_landline_is_refused_before_sending(
    provider: Provider,
    server: SmsServer,
    session: requests.Session,
    overrides: dict[str, str],
    code: str,
) -> None:
    with pytest.raises(ChannelError) as caught:
        provider.channel(server.url, session).send(provider.message(**overrides))
    assert caught.value.permanent and caught.value.code == code
    assert server.seen == []
