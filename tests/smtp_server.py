"""A real SMTP server on loopback (aiosmtpd), for the e-mail, dispatch and runner tests.

`smtp_server(handler)` starts aiosmtpd on a free port of 127.0.0.1 and yields the port;
`smtp_server_on(port, handler)` does the same on a given port (a server that comes up
later). Handlers record what arrived (`Recorder`) and may misbehave on cue (subclasses in
the tests).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Recorder:
    """An aiosmtpd handler that stores what arrives and counts connections (EHLOs)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.connections = 0
        self.mails = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK queued"

    def parsed(self) -> list[EmailMessage]:
        return [parse(content) for _, _, content in self.received]

    def message_ids(self) -> list[str]:
        """The Message-ID of each message received, read from its header block only (a
        thousand messages with their DOCX parse in seconds; their headers in a tenth)."""
        headers = BytesHeaderParser(policy=email.policy.default)
        return [str(headers.parsebytes(content)["Message-ID"]) for _, _, content in self.received]


class SlowRecorder(Recorder):
    """Takes a few milliseconds per message, like a real server, so a kill lands mid-batch.

    Set `delay` to 0 once the kill has landed: the rest need not crawl.
    """

    def __init__(self, delay: float = 0.003) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def parse(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def rejecting(*args: Any) -> AuthResult:
    """An aiosmtpd authenticator that refuses every login."""
    return AuthResult(success=False, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def smtp_server(handler: Any, **smtp_options: Any) -> Iterator[int]:
    with smtp_server_on(free_port(), handler, **smtp_options) as port:
        yield port


@contextmanager
def smtp_server_on(port: int, handler: Any, **smtp_options: Any) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
