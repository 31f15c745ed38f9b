"""What every channel is: `send(message) -> Receipt`, or an exception that says what next.

The exceptions are the channel branch of the pipeline's tree (`pipeline.errors`)::

    ChannelError(permanent=False)   retry later (rate limit, 5xx, connection refused)
    ChannelError(permanent=True)    will fail the same way again (bad number, template)
    ChannelDown                     every send would fail (authentication, account,
                                    signature): the channel goes out of service a while
    OutcomeUnknown                  the request went out; whether it arrived is unknown
                                    (timeout after DATA / after the body was sent) —
                                    never resent automatically

A channel may be used for a batch: `with channel:` opens what it needs once (one SMTP
connection) and closes it after; `send` outside a `with` opens and closes per call.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from pipeline.errors import ChannelDown as ChannelDown
from pipeline.errors import ChannelError as ChannelError
from pipeline.errors import OutcomeUnknown as OutcomeUnknown


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"
    base64: str | None = field(default=None, repr=False, compare=False)
    """`content` in base64 (no line breaks) when the caller holds it already (the planned
    DOCX): the e-mail uses it as it is instead of encoding `content` again."""


class Base64Attachment(Attachment):
    """An attachment held as base64 text (the planned DOCX, from the outbox payload).

    The e-mail puts `base64` in the MIME as it is; `content` is decoded only when a channel
    asks for the bytes (the file channels, a preview): decoding 50 kB per e-mail for
    nothing cost about a tenth of a millisecond.
    """

    def __init__(self, filename: str, base64_text: str, mime_type: str) -> None:
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "mime_type", mime_type)
        object.__setattr__(self, "base64", base64_text)

    @property
    def content(self) -> bytes:
        return binascii.a2b_base64(self.base64 or "")


@dataclass(frozen=True)
class Message:
    key: str
    """The outbox key: unique per (record, kind, occurrence, channel, recipient)."""
    channel: str
    recipient: str
    """An e-mail address or a mainland mobile number."""
    recipient_name: str | None = None
    subject: str = ""
    text: str = ""
    html: str | None = None
    sms_template: str | None = None
    """The logical SMS template (a key of `sms.templates`)."""
    sms_params: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Receipt:
    provider_id: str | None = None
    """The provider's message id (SMTP Message-ID, SMS BizId / SerialNo), for status checks."""
    detail: dict[str, Any] = field(default_factory=dict)
    delivered: bool = True
    """False: the message went to a file, not to the recipient (the file channel)."""


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> Receipt: ...

    def __enter__(self) -> Channel: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Pending(Protocol):
    """A message handed over whose outcome is still to come."""

    def wait(self) -> Receipt:
        """The receipt, or the channel's exception, as `send` would give them."""
        ...


@runtime_checkable
class Pipelined(Protocol):
    """A channel that can hand a message over and give its outcome later (the e-mail: the
    body is sent, the server's verdict read when the caller is ready). `send(message)` is
    `begin(message).wait()`; nothing else may use the channel in between."""

    def begin(self, message: Message) -> Pending: ...


@runtime_checkable
class Preparer(Protocol):
    """A channel that can build a message's bytes ahead of sending it (the e-mail's MIME),
    while the message before it is still on the wire; `send` then uses them."""

    def prepare(self, message: Message) -> None: ...


class StatusChecker(Protocol):
    """A channel that can resolve an unknown outcome (an SMS status query)."""

    def check(self, message: Message, provider_id: str | None) -> Receipt | None:
        """The receipt if the provider knows it delivered; None if it does not know."""
        ...
