"""Checks made before any SMS is sent, the helpers the gateways share, and the factory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError

from pipeline.channels.base import ChannelError, Message, OutcomeUnknown
from pipeline.channels.sms import AliyunSms, TencentSms, WebhookSms, make_sms_channel
from pipeline.channels.sms.common import (
    Limits,
    prepare,
    retry_after,
    scrub,
    transport_error,
    until_beijing_midnight,
)
from pipeline.config import SmsSettings
from pipeline.errors import ConfigError
from tests.sms_server import NOW, PHONE

TENCENT = Limits("Tencent", 12)
SETTINGS = SmsSettings(templates={"notice": {"id": "T1", "params": ["company", "deadline"]}})


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "key": "k",
        "channel": "sms",
        "recipient": PHONE,
        "sms_template": "notice",
        "sms_params": {"deadline": "3月9日", "company": "某某科技", "unused": "x" * 99},
    } | overrides
    return Message(**values)


def refusal(**overrides: Any) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        prepare(message(**overrides), SETTINGS, TENCENT)
    assert caught.value.permanent
    return caught.value


def test_prepare_orders_parameters_as_the_template_and_drops_others() -> None:
    request = prepare(message(), SETTINGS, TENCENT)
    assert list(request.params.items()) == [("company", "某某科技"), ("deadline", "3月9日")]
    assert (request.template_id, request.phone, request.masked_phone) == (
        "T1",
        PHONE,
        "138****5678",
    )


@pytest.mark.parametrize("recipient", ["+8613812345678", "86 138-1234-5678", " 13812345678 "])
def test_prepare_accepts_a_mainland_mobile_with_or_without_86(recipient: str) -> None:
    assert prepare(message(recipient=recipient), SETTINGS, TENCENT).phone == PHONE


@pytest.mark.parametrize("recipient", ["1381234567", "12812345678", "021-61234567", "a@b.cn"])
def test_prepare_refuses_anything_else_without_showing_the_number(recipient: str) -> None:
    error = refusal(recipient=recipient)
    assert error.code == "invalid-number" and recipient not in str(error)


def test_prepare_refuses_a_message_without_a_template() -> None:
    assert refusal(sms_template=None).code == "template-missing"


def test_prepare_names_an_unknown_template_and_the_configured_ones() -> None:
    error = refusal(sms_template="reminder")
    assert "'reminder' is not configured" in str(error) and "notice" in str(error)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_prepare_refuses_a_missing_or_blank_parameter(value: str | None) -> None:
    params = {"company": "某某科技"} | ({} if value is None else {"deadline": value})
    assert "'deadline' has no value" in str(refusal(sms_params=params))


def test_prepare_names_the_parameter_and_the_limit() -> None:
    error = refusal(
        sms_params={"company": "一二三四五六七八九十壹贰", "deadline": "一二三四五六七八九十壹贰叁"}
    )
    assert str(error) == (
        "SMS template 'notice': parameter 'deadline' is 13 characters; Tencent allows at most 12"
    )
    assert error.code == "param-too-long"


@pytest.mark.parametrize(
    "link",
    [
        "http://a.b",
        "HTTPS://x",
        "www.abc",
        "t.cn/x",
        "gsxt.gov.cn",
        "example.com",
        "ftp://h",
        "详见abc.com查询",
        "见www.x",
    ],
)
def test_prepare_refuses_links_in_variables(link: str) -> None:
    error = refusal(sms_params={"company": "某某", "deadline": link})
    assert error.code == "param-url" and "'deadline'" in str(error)


@pytest.mark.parametrize("value", ["2026.03.09", "1.5万元", "No.3", "沪市监罚〔2021〕12号"])
def test_prepare_lets_dates_amounts_and_numbers_through(value: str) -> None:
    assert (
        prepare(
            message(sms_params={"company": "某", "deadline": value}), SETTINGS, Limits("Aliyun", 35)
        ).params["deadline"]
        == value
    )


def test_scrub_masks_numbers_with_a_country_code_too() -> None:
    assert scrub(f"+86{PHONE}, 86{PHONE}, {PHONE}.") == "138****5678, 138****5678, 138****5678."


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 2, 1, 30, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after("Mon, 02 Mar 2026 01:31:00 GMT", now) == 60.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def test_daily_caps_reset_at_beijing_midnight() -> None:
    assert until_beijing_midnight(NOW) == (14 * 60 + 29) * 60 + 55
    assert until_beijing_midnight(datetime(2026, 3, 2, 15, 59, 0, tzinfo=UTC)) == 60


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({"provider": "webhook", "url": "http://gw", "secret": "s"}, WebhookSms),
        ({"provider": "aliyun", "access_key_id": "a", "access_key_secret": "b"}, AliyunSms),
        (
            {"provider": "tencent", "secret_id": "a", "secret_key": "b", "sdk_app_id": "1"},
            TencentSms,
        ),
    ],
)
def test_the_factory_builds_the_configured_gateway(values: dict[str, Any], kind: type) -> None:
    with requests.Session() as session:
        assert isinstance(make_sms_channel(SmsSettings(**values), session, lambda: NOW), kind)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"provider": "webhook", "url": "http://gw"},
        {"provider": "aliyun"},
        {"provider": "tencent", "secret_id": "a", "secret_key": "b"},
    ],
)
def test_the_factory_refuses_an_incomplete_configuration(values: dict[str, Any]) -> None:
    with requests.Session() as session, pytest.raises(ConfigError):
        make_sms_channel(SmsSettings(**values), session, lambda: NOW)


def test_a_channel_works_as_a_context_manager() -> None:
    with requests.Session() as session:
        channel = make_sms_channel(
            SmsSettings(provider="webhook", url="http://gw", secret="s"), session, lambda: NOW
        )
        with channel as opened:
            assert opened is channel and opened.name == "sms"


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        (
            requests.ConnectTimeout(
                MaxRetryError(
                    None,
                    f"/?PhoneNumbers={PHONE}",  # type: ignore[arg-type]
                    ConnectTimeoutError("timed out"),
                )
            ),
            False,
        ),
        (requests.exceptions.SSLError("handshake failed"), False),
        (requests.ReadTimeout("Read timed out."), True),
        (
            requests.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError(104))
            ),
            True,
        ),
        (requests.exceptions.ChunkedEncodingError("Connection broken"), True),
    ],
)
def test_failures_map_to_retry_before_sending_and_unknown_after(
    exc: requests.RequestException, unknown: bool
) -> None:
    error = transport_error(exc, "Aliyun SendSms")
    assert isinstance(error, OutcomeUnknown) is unknown and error.permanent is unknown
    assert PHONE not in str(error) and "PhoneNumbers" not in str(error)
