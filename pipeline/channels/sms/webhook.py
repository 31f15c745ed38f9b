"""An SMS gateway of our own (or a relay) reached by a signed JSON POST.

The body is ``{"id": <outbox key>, "phone", "template": <logical name>, "params",
"text"}`` and ``X-Signature`` is the hex HMAC-SHA256 of the exact body bytes under
`sms.secret`, so the gateway can check both who sent it and that nothing changed.
The outbox key travels as ``id``: a gateway that deduplicates on it makes a resend safe.

2xx → Receipt (provider id from the reply's ``id`` / ``message_id``); 429 → retry after
Retry-After; 5xx → retry, except 504 (a gateway timed out waiting for the gateway behind
it, which may have sent the SMS) → OutcomeUnknown; 401/403 → permanent, channel down
(the secret is wrong); any other status → permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime

import requests

from pipeline.channels.base import Message, Receipt
from pipeline.channels.sms.common import (
    Limits,
    SmsChannelBase,
    http_error,
    json_body,
    prepare,
    transport_error,
)
from pipeline.config import SmsSettings
from pipeline.errors import ChannelDown, ConfigError

LIMITS = Limits("the webhook", None, allow_urls=True)
"""Our own gateway: no limits of its own (pass stricter ones for a relay to a provider)."""


def sign(secret: str, body: bytes) -> str:
    """The X-Signature value: hex HMAC-SHA256 of the raw body bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSms(SmsChannelBase):
    def __init__(
        self,
        settings: SmsSettings,
        session: requests.Session,
        clock_now: Callable[[], datetime],
        limits: Limits = LIMITS,
    ) -> None:
        if not settings.url or not settings.secret:
            raise ConfigError("sms.provider webhook needs sms.url and sms.secret")
        self.settings = settings
        self.session = session
        self.now = clock_now
        self.limits = limits

    def send(self, message: Message) -> Receipt:
        request = prepare(message, self.settings, self.limits)
        body = json.dumps(
            {
                "id": request.key,
                "phone": request.phone,
                "template": request.template,
                "params": request.params,
                "text": message.text,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Signature": sign(self.settings.secret or "", body),
        }
        try:
            response = self.session.post(
                self.settings.url or "", data=body, headers=headers, timeout=self.settings.timeout
            )
        except requests.RequestException as exc:
            raise transport_error(exc, "the SMS webhook") from None
        return self._receipt(response)

    def _receipt(self, response: requests.Response) -> Receipt:
        status = response.status_code
        if 200 <= status < 300:
            data = json_body(response) or {}
            provider_id = data.get("id") or data.get("message_id")
            return Receipt(
                provider_id=str(provider_id) if provider_id else None,
                detail={"provider": "webhook", "status": status},
            )
        if status in (401, 403):  # the secret is wrong: every send would be refused
            raise ChannelDown(f"the SMS webhook: HTTP {status}", code=f"http-{status}")
        raise http_error(response, "the SMS webhook", self.now())
