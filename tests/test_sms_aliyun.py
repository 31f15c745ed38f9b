"""The Aliyun channel against a real loopback server that checks the ACS3 signature: what only
Aliyun does (the SendSms request on the wire, QuerySendDetails). What every gateway does is in
tests/test_sms_contract.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from pipeline.channels.base import ChannelError, OutcomeUnknown, Receipt
from tests.sms_providers import ALIYUN, ALIYUN_KEY_ID
from tests.sms_server import KEY, PHONE, Reply, SmsServer, json_reply

channel, message, signed, ok, refusal = (
    ALIYUN.channel,
    ALIYUN.message,
    ALIYUN.signed,
    ALIYUN.ok,
    ALIYUN.refusal,
)


def test_it_sends_a_signed_sendsms_and_returns_the_bizid(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(signed(ok()))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "900619746936498440^0"
    seen = server.seen[0]
    assert seen.method == "POST" and seen.body == b""
    assert seen.query == {
        "PhoneNumbers": PHONE,
        "SignName": "宝山区营商环境局",
        "TemplateCode": "SMS_465",
        "OutId": KEY,
        "TemplateParam": json.dumps(message().sms_params, ensure_ascii=False),
    }
    assert seen.headers["x-acs-action"] == "SendSms"
    assert seen.headers["x-acs-version"] == "2017-05-25"
    assert seen.headers["x-acs-date"] == "2026-03-02T01:30:05Z"
    assert seen.headers["authorization"].startswith(
        f"ACS3-HMAC-SHA256 Credential={ALIYUN_KEY_ID},SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="
    )


def details(*entries: dict[str, Any]) -> Reply:
    return json_reply(
        {
            "Code": "OK",
            "TotalCount": len(entries),
            "RequestId": "R-3",
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": list(entries)},
        }
    )


def detail(status: int, out_id: str = KEY, err: str = "DELIVERED") -> dict[str, Any]:
    return {
        "SendStatus": status,
        "ErrCode": err,
        "OutId": out_id,
        "PhoneNum": PHONE,
        "ReceiveDate": "2026-03-02 09:30:09",
        "TemplateCode": "SMS_465",
    }


def test_check_queries_send_details_and_reports_delivery(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(signed(details(detail(3))))
    receipt = channel(server.url, session).check(message(), "900619746936498440^0")
    assert isinstance(receipt, Receipt) and receipt.provider_id == "900619746936498440^0"
    seen = server.seen[0]
    assert seen.headers["x-acs-action"] == "QuerySendDetails"
    assert seen.query == {
        "PhoneNumber": PHONE,
        "BizId": "900619746936498440^0",
        "SendDate": "20260302",
        "PageSize": "50",
        "CurrentPage": "1",
    }


def test_check_raises_a_permanent_error_for_a_failed_delivery(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(details(detail(2, err="MK:0001")))
    with pytest.raises(ChannelError) as caught:
        channel(server.url, session).check(message(), "biz")
    assert caught.value.permanent and caught.value.code == "MK:0001"


def test_check_returns_none_while_waiting_for_the_carrier(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(details(detail(1, err="")))
    assert channel(server.url, session).check(message(), "biz") is None


def test_check_without_a_bizid_finds_the_message_by_outid_and_looks_at_yesterday(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(details(detail(3, out_id="someone-else")), details(detail(3)))
    assert channel(server.url, session).check(message(), None) is not None
    assert [s.query["SendDate"] for s in server.seen] == ["20260302", "20260301"]
    assert "BizId" not in server.seen[0].query


def test_check_returns_none_when_the_provider_has_no_record(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(details(), details())
    assert channel(server.url, session).check(message(), "biz") is None


@pytest.mark.parametrize(
    ("reply", "down"),
    [
        (refusal("Throttling.User", "flow control", 400), False),
        (refusal("InvalidAccessKeyId.NotFound", "no such key", 404), True),
        (Reply(503), False),
    ],
)
def test_a_failed_status_query_leaves_the_outcome_unknown(
    server: SmsServer, session: requests.Session, reply: Reply, down: bool
) -> None:
    server.reply(reply)
    with pytest.raises(OutcomeUnknown) as caught:
        channel(server.url, session).check(message(), "biz")
    assert caught.value.channel_down is down
