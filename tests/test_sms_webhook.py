"""The webhook SMS channel against a real loopback gateway that checks the signature: what only
the webhook does (the signed JSON body, its ways of naming the message id). What every gateway
does is in tests/test_sms_contract.py."""

from __future__ import annotations

import requests

from tests.sms_providers import WEBHOOK
from tests.sms_server import PHONE, Reply, SmsServer, json_reply

channel, message, verified = WEBHOOK.channel, WEBHOOK.message, WEBHOOK.signed


def test_it_posts_the_signed_json_and_returns_the_gateway_id(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(verified(json_reply({"id": "gw-42"})))
    receipt = channel(server.url, session).send(message())
    assert receipt.provider_id == "gw-42"
    body = server.seen[0].json()
    assert body == {
        "id": "rec-1/notice/1/sms/x",
        "phone": PHONE,
        "template": "notice",
        "params": {"company": "某某科技", "deadline": "3月9日"},
        "text": "请于3月9日前办理信用修复",
    }


def test_it_reads_message_id_and_accepts_an_empty_2xx(
    server: SmsServer, session: requests.Session
) -> None:
    server.reply(verified(json_reply({"message_id": 7}, status=201)), verified(Reply(204)))
    assert channel(server.url, session).send(message()).provider_id == "7"
    assert channel(server.url, session).send(message()).provider_id is None
