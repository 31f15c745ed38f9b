"""E-mail over SMTP: the MIME built with the standard library, one connection per batch.

::

    with EmailChannel(settings) as channel:     # one connection, opened on the first send
        receipt = channel.send(message)          # Receipt(provider_id=Message-ID)

Why the standard library and not yagmail (0.16.0, measured; docs/domain.md §8). yagmail
was asked for, and every part of it was weighed; none survives what this channel must do:

- its message builder turns each newline of the body into ``<br>``, wraps parts in
  ``<div>``, inlines CSS with premailer, sends the raw HTML as the "plain text" part,
  gives ``Content-Disposition: attachment`` only to ``application/*`` parts, takes
  attachments only as files, and derives the Message-ID from from/to/subject — so the
  MIME is built here (`mime_bytes`, in the layout of `email.message.EmailMessage`);
- its connection: ``send()`` opens a new connection and logs in on every call (never
  QUITs the previous one), appends ``@gmail.com`` to a user name without ``@``, falls back
  to keyring and an interactive prompt without a password, verifies no certificate unless
  given a context, and wraps ``sendmail()`` in three attempts with sleeps of 3, 6 and 9 s
  that end in ``return False``. ``sendmail()`` cannot tell "refused before DATA" (safe to
  retry) from "lost after the body was sent" (may have been delivered). So the
  connection is smtplib's, driven at the level of MAIL / RCPT / DATA.

yagmail stays a dependency for the comparison in ``bench/bench_email.py``.

Errors (see `pipeline.errors`)::

    refused / timeout / dropped while connecting or before DATA   ChannelError(permanent=False)
    4xx reply                                                      ChannelError(permanent=False)
    5xx reply (550 unknown recipient …)                            ChannelError(permanent=True)
    authentication failed (or a 530/534/535/538 reply), AUTH or
    STARTTLS missing, certificate not trusted                      ChannelDown (permanent)
    lost after the body was sent, before the final reply           OutcomeUnknown
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import random
import re
import smtplib
import ssl
import sys
from email import message_from_bytes, quoprimime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, localtime
from functools import lru_cache
from types import TracebackType
from urllib.parse import quote

from pipeline.channels.base import Attachment, Message, Pending, Receipt
from pipeline.config import EmailSettings
from pipeline.errors import ChannelDown, ChannelError, ConfigError, OutcomeUnknown
from pipeline.logs import get_logger, mask_text

log = get_logger("channels.email")

DEFAULT_DOMAIN = "credit-repair.local"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

POLICY = SMTP_POLICY.clone(cte_type="7bit")
"""CRLF line ends; non-ASCII bodies as base64/quoted-printable, so no server needs 8BITMIME."""

LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
"""ASCII addresses only: a non-ASCII one needs SMTPUTF8, which we do not negotiate.
(A domain without a dot passes: ``credit-repair@localhost`` is the file channel's sender.)"""
READY = 4
"""Messages whose MIME `prepare` keeps (the next one is all the dispatcher needs)."""
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
"""An `ADDRESS` whose local part is a dot-atom (no leading, trailing or doubled dot)."""
AUTH_CODES = frozenset({530, 534, 535, 538})
"""Replies that mean "not authenticated": every message would fail the same way."""


# --------------------------------------------------------------------------- MIME
#
# The bytes are written here directly, in the layout `email.message.EmailMessage` with
# `POLICY` produces (same parts, part headers, transfer encodings and body lines): building
# an EmailMessage and flattening it with `policy.default`-style header folding took
# 5–7 ms per notice, most of it re-parsing and re-folding headers; this takes a fraction
# of a millisecond. Headers: RFC 2047 base64 encoded-words for anything not plain ASCII,
# RFC 2231 for non-ASCII file names, every line ≤ 78 characters where the data allows.

CRLF = "\r\n"
MAX_LINE = 78
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An RFC 2045 token: a MIME type half that needs no quoting."""


def message_id(key: str, domain: str = DEFAULT_DOMAIN) -> str:
    """``<sha256(key)[:32]@domain>``: the same outbox key always gets the same Message-ID."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def one_line(value: str) -> str:
    """Control characters (CR, LF, …) become one space: a value cannot start a new header."""
    return LINE_BREAKS.sub(" ", value).strip()


def recipient(message: Message) -> Address:
    addr = message.recipient.strip()
    if not ADDRESS.fullmatch(addr):
        raise ChannelError(
            f"not a usable e-mail address: {mask_text(one_line(addr))!r}",
            permanent=True,
            code="bad_address",
        )
    return Address(display_name=one_line(message.recipient_name or ""), addr_spec=addr)


def _recipient_parts(message: Message) -> tuple[str, str]:
    """(display name, address) of `recipient(message)`. A plain dot-atom address is its own
    addr_spec, so the `Address` (its header parser: ~0.2 ms a message) is built only for
    the others, which it may quote or refuse."""
    addr = message.recipient.strip()
    if DOT_ATOM_ADDRESS.fullmatch(addr):
        return one_line(message.recipient_name or ""), addr
    to = recipient(message)
    return to.display_name, to.addr_spec


def _plain_ascii(value: str) -> bool:
    """Printable ASCII that no reader could take for an encoded-word."""
    return value.isascii() and value.isprintable() and "=?" not in value


def _encoded_words(value: str, first: int) -> list[str]:
    """`value` as ``=?utf-8?b?…?=`` words, the first ≤ `first` characters, the rest ≤ 77.

    Split between characters, never inside one; readers join adjacent encoded-words
    without the folding white space between them (RFC 2047 §6.2)."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    room = max(first - 12, 4) // 4 * 3
    for char in value:
        n = len(char.encode("utf-8"))
        if chunk and size + n > room:
            words.append(
                "=?utf-8?b?"
                + binascii.b2a_base64("".join(chunk).encode("utf-8"), newline=False).decode("ascii")
                + "?="
            )
            chunk, size, room = [], 0, (MAX_LINE - 1 - 12) // 4 * 3
        chunk.append(char)
        size += n
    if chunk or not words:
        words.append(
            "=?utf-8?b?"
            + binascii.b2a_base64("".join(chunk).encode("utf-8"), newline=False).decode("ascii")
            + "?="
        )
    return words


def _fold_words(name: str, words: list[str], tail: str = "") -> str:
    """``Name: w1 w2 … tail``, a new line (CRLF + space) before a word that would not fit."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > MAX_LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    if tail:
        if len(line) + 1 + len(tail) > MAX_LINE:
            lines.append(line)
            line = ""
        line += " " + tail
    lines.append(line)
    return CRLF.join(lines) + CRLF


def _unstructured(name: str, value: str) -> str:
    """An unstructured header (Subject): as is when plain ASCII, else encoded-words."""
    if _plain_ascii(value):
        if len(name) + 2 + len(value) <= MAX_LINE:
            return f"{name}: {value}{CRLF}"
        folded = _fold_words(name, value.split(" "))
        if all(len(line) <= MAX_LINE for line in folded.split(CRLF)) and "  " not in value:
            return folded
    return _fold_words(name, _encoded_words(value, MAX_LINE - len(name) - 2))


@lru_cache(maxsize=64)
def _address_header(name: str, display_name: str, addr_spec: str) -> str:
    """``Name: display name <addr>``; the name as an atom phrase, a quoted string or encoded-words."""
    if not display_name:
        return f"{name}: {addr_spec}{CRLF}"
    if _plain_ascii(display_name):
        phrase = (
            display_name
            if _ATOM_PHRASE.fullmatch(display_name)
            else '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
        line = f"{name}: {phrase} <{addr_spec}>"
        if len(line) <= MAX_LINE:
            return line + CRLF
    words = _encoded_words(display_name, MAX_LINE - len(name) - 2)
    return _fold_words(name, words, f"<{addr_spec}>")


@lru_cache(maxsize=64)
def _param(header: str, value: str, key: str, param: str) -> str:
    """``Header: value; key="param"`` (RFC 2231 ``key*=utf-8''…`` when not plain ASCII),
    folded before the parameter, and into ``key*0*``, ``key*1*`` … when still too long."""
    if _plain_ascii(param):
        quoted = '"' + param.replace("\\", "\\\\").replace('"', '\\"') + '"'
        single = f"{header}: {value}; {key}={quoted}"
        if len(single) <= MAX_LINE:
            return single + CRLF
        if len(f" {key}={quoted}") <= MAX_LINE:
            return f"{header}: {value};{CRLF} {key}={quoted}{CRLF}"
    encoded = quote(param, safe="", encoding="utf-8")
    single = f" {key}*=utf-8''{encoded}"
    if len(single) <= MAX_LINE:
        return f"{header}: {value};{CRLF}{single}{CRLF}"
    lines: list[str] = []
    line = f" {key}*0*=utf-8''"
    for char in param:  # split between characters, as the standard library does
        piece = quote(char, safe="", encoding="utf-8")
        if len(line) + len(piece) + 1 > MAX_LINE and not line.endswith("="):
            lines.append(line)
            line = f" {key}*{len(lines)}*="
        line += piece
    lines.append(line)
    return f"{header}: {value};{CRLF}" + f";{CRLF}".join(lines) + CRLF


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ending CRLF (as `email.contentmanager`)."""
    return _lines(binascii.b2a_base64(data, newline=False).decode("ascii"))


def _lines(text: str) -> str:
    """Base64 text (no line breaks) in lines of 76 characters, each ending CRLF."""
    if not text:
        return ""
    return CRLF.join([text[i : i + 76] for i in range(0, len(text), 76)]) + CRLF


def _text_part(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, body) of a text part: `email.contentmanager`'s choice
    (7bit for short ASCII lines, else the shorter of quoted-printable and base64)."""
    lines = text.encode("utf-8").splitlines()
    if max((len(x) for x in lines), default=0) <= MAX_LINE:
        try:
            return "7bit", "".join(line.decode("ascii") + CRLF for line in lines) or CRLF
        except UnicodeDecodeError:
            pass
    sniff = b"\r\n".join(lines[:10]) + b"\r\n"
    sniff_base64 = len(binascii.b2a_base64(sniff))
    if _qp_at_least(sniff, len(lines[:10])) > sniff_base64:
        # Chinese text: even the shortest quoted-printable is longer, so base64, the same
        # choice, without encoding it (quoprimime is pure Python: ~0.1 ms per part)
        return "base64", _base64_lines(b"\r\n".join(lines) + b"\r\n")
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), MAX_LINE)
    if len(sniff_qp) > sniff_base64:
        return "base64", _base64_lines(b"\r\n".join(lines) + b"\r\n")
    if len(lines) <= 10:
        qp = sniff_qp
    else:
        qp = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), MAX_LINE)
    return "quoted-printable", qp.replace("\n", CRLF)  # ends with a line end: the input does


_HIGH_BYTES = bytes(range(0x80, 0x100))


def _qp_at_least(sniff: bytes, lines: int) -> int:
    """A lower bound of ``len(quoprimime.body_encode(sniff))`` for `lines` CRLF-ended
    lines: every byte ≥ 0x80 becomes ``=XX`` (3 characters), every line end one ``\\n``,
    anything else at least itself (soft breaks and other escapes only add)."""
    high = len(sniff) - len(sniff.translate(None, _HIGH_BYTES))
    return len(sniff) - lines + 2 * high


def _text_headers(subtype: str, cte: str) -> str:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: {cte}{CRLF}'
    )


def _boundary(bodies: list[str]) -> str:
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}=="
        if not any(boundary in body for body in bodies):
            return boundary


def _multipart(subtype: str, parts: list[str], extra_headers: str = "") -> str:
    """A multipart entity (headers, blank line, parts); `parts` are whole entities."""
    boundary = _boundary(parts)
    header = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    if len(header) > MAX_LINE:
        header = f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"'
    delimiter = f"{CRLF}--{boundary}{CRLF}"
    return (
        f"{extra_headers}{header}{CRLF}{CRLF}--{boundary}{CRLF}"
        + delimiter.join(parts)
        + f"{CRLF}--{boundary}--{CRLF}"
    )


def mime_bytes(
    message: Message, sender: Address, domain: str = DEFAULT_DOMAIN, date: dt.datetime | None = None
) -> bytes:
    """The message as SMTP carries it (CRLF line ends, 7-bit clean): text/plain
    (+ text/html as multipart/alternative) + attachments, headers RFC 2047 / RFC 2231."""
    to_name, to_addr = _recipient_parts(message)  # ChannelError(bad_address) before anything
    head = (
        _unstructured("Subject", one_line(message.subject))
        + _address_header("From", sender.display_name, sender.addr_spec)
        + _address_header("To", to_name, to_addr)
        + f"Date: {format_datetime(date or localtime())}{CRLF}"
        + f"Message-ID: {message_id(message.key, domain)}{CRLF}"
    )
    cte, text = _text_part(message.text)
    if message.html is None and not message.attachments:
        entity = f"{head}{_text_headers('plain', cte)}MIME-Version: 1.0{CRLF}{CRLF}{text}"
        return entity.encode("ascii")
    parts = [f"{_text_headers('plain', cte)}{CRLF}{text}"]
    if message.html is not None:
        html_cte, html = _text_part(message.html)
        parts.append(f"{_text_headers('html', html_cte)}MIME-Version: 1.0{CRLF}{CRLF}{html}")
    if message.attachments:
        if len(parts) == 2:
            parts = [_multipart("alternative", parts)]
        for attachment in message.attachments:
            parts.append(_attachment_part(attachment))
        subtype = "mixed"
    else:
        subtype = "alternative"
    return (head + _multipart(subtype, parts, f"MIME-Version: 1.0{CRLF}")).encode("ascii")


def _attachment_part(attachment: Attachment) -> str:
    maintype, _, subtype = attachment.mime_type.partition("/")
    if not subtype:
        maintype, subtype = "application", "octet-stream"
    if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
        raise ValueError(f"not a MIME type: {attachment.mime_type!r}")
    disposition = _param(
        "Content-Disposition", "attachment", "filename", one_line(attachment.filename)
    )
    return (
        f"Content-Type: {maintype.lower()}/{subtype.lower()}{CRLF}Content-Transfer-Encoding: base64{CRLF}"
        f"{disposition}MIME-Version: 1.0{CRLF}{CRLF}{_attachment_body(attachment)}"
    )


def _attachment_body(attachment: Attachment) -> str:
    """The attachment's base64 lines: from the base64 the caller gave (the planned DOCX,
    already checked as base64 of `content` by whoever stored it), else from `content`."""
    if attachment.base64 is not None:
        return _lines(attachment.base64)
    return _base64_lines(attachment.content)


def build_mime(
    message: Message, sender: Address, domain: str = DEFAULT_DOMAIN, date: dt.datetime | None = None
) -> EmailMessage:
    """`mime_bytes` as an `EmailMessage` (parsed back), for callers that want the object."""
    parsed = message_from_bytes(mime_bytes(message, sender, domain, date), policy=POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def sender_address(sender: str | Address, name: str | None = None) -> Address:
    """The From address with its display name (e.g. ``宝山区营商环境局``); ConfigError if unusable."""
    if isinstance(sender, Address):
        return sender
    if not ADDRESS.fullmatch(sender.strip()):
        raise ConfigError(f"email.sender: not an e-mail address: {mask_text(sender)!r}")
    return Address(display_name=one_line(name or ""), addr_spec=sender.strip())


def render_eml(
    message: Message,
    sender: str | Address,
    *,
    domain_for_ids: str = DEFAULT_DOMAIN,
    date: dt.datetime | None = None,
) -> bytes:
    """The message as an .eml file (CRLF line ends): exactly the bytes SMTP would carry."""
    return mime_bytes(message, sender_address(sender), domain_for_ids, date)


# --------------------------------------------------------------------------- SMTP


class _Dropped(Exception):
    """The connection was lost (or the server said 421) before the body was sent."""


def _reply_error(stage: str, code: int, reply: bytes | str) -> ChannelError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    message = f"SMTP {stage} refused: {code} {mask_text(one_line(text))}"
    if code in AUTH_CODES:
        return ChannelDown(message, code=str(code))
    return ChannelError(message, permanent=500 <= code < 600, code=str(code))


def _channel_down(reason: str, exc: BaseException) -> ChannelDown:
    code = getattr(exc, "smtp_code", None)
    return ChannelDown(
        f"{reason}: {mask_text(str(exc))}", code=str(code) if code else reason.split()[0]
    )


def _again(first: ChannelError) -> ChannelError:
    """The error of a batch's failed opening, restated for the next message of the batch."""
    message = f"not tried again in this batch: {first}"
    if first.channel_down:
        return ChannelDown(message, code=first.code)
    return ChannelError(message, permanent=first.permanent, code=first.code)


def _expect(stage: str, reply: tuple[int, bytes], ok: tuple[int, ...]) -> None:
    code, text = reply
    if code in ok:
        return
    if code == 421:  # the server is closing the connection: nothing was accepted
        raise _Dropped(f"{stage}: 421")
    raise _reply_error(stage, code, text)


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled, CRLF-terminated, then the lone dot."""
    data = data.replace(b"\n.", b"\n..")  # the same as re.sub(rb"(?m)^\.", b"..", data), faster
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def transfer(conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """MAIL, RCPT, DATA by hand, so a failure is known to be before or after the body."""
    hand_over(conn, sender, to, data)
    verdict(conn)


def hand_over(conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """`transfer` up to the body sent: the server's verdict on it is read by `verdict`."""
    try:
        conn.ehlo_or_helo_if_needed()  # sendmail() does this; mail() does not
        _expect("MAIL FROM", conn.mail(sender), (250,))
        _expect("RCPT TO", conn.rcpt(to), (250, 251))
        conn.putcmd("data")
        _expect("DATA", conn.getreply(), (354,))
    except smtplib.SMTPServerDisconnected as exc:  # also every socket error and timeout
        raise _Dropped(str(exc)) from exc
    except smtplib.SMTPResponseException as exc:  # EHLO refused
        raise _reply_error("EHLO", exc.smtp_code, exc.smtp_error) from exc
    try:
        conn.send(_dot_stuffed(data))
    except OSError as exc:
        raise _lost_after_sending(exc) from exc


def verdict(conn: smtplib.SMTP) -> None:
    """The server's reply to a body `hand_over` sent: 250, or the error it means."""
    try:
        reply = conn.getreply()
    except OSError as exc:
        raise _lost_after_sending(exc) from exc
    if reply[0] != 250:
        raise _reply_error("message", *reply)


def _lost_after_sending(exc: OSError) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"the connection failed after the message was sent ({exc}); "
        "the server may have delivered it"
    )


class _Verdict:
    """A message whose body the server has (`EmailChannel.begin`): `wait` reads its reply."""

    def __init__(self, channel: EmailChannel, message: Message) -> None:
        self.channel, self.message = channel, message

    def wait(self) -> Receipt:
        channel = self.channel
        try:
            conn = channel._conn
            if conn is None:  # closed under it: the body went out, its verdict is lost
                raise OutcomeUnknown(
                    "the SMTP connection was closed before the server's reply was read; "
                    "the server may have delivered it"
                )
            try:
                verdict(conn)
            except OutcomeUnknown:
                channel._discard()
                raise
            except ChannelError:
                channel._reset()
                raise
        finally:
            if not channel._batch:
                channel._quit()
        return Receipt(provider_id=message_id(self.message.key, channel.domain_for_ids))


class EmailChannel:
    """SMTP (implicit TLS, STARTTLS or plain); `with` keeps one connection for a batch."""

    name = "email"

    def __init__(self, settings: EmailSettings, domain_for_ids: str = DEFAULT_DOMAIN) -> None:
        if not settings.host:
            raise ConfigError("email.host is not set")
        self.settings = settings
        self.sender = sender_address(settings.sender or settings.user or "", settings.sender_name)
        self.domain_for_ids = domain_for_ids
        self._conn: smtplib.SMTP | None = None
        self._batch = False
        self._open_failed: ChannelError | None = None
        """Within a batch, why the connection could not be opened: not tried again."""
        self._ready: dict[str, tuple[Message, bytes]] = {}
        """MIME built ahead (`prepare`), by outbox key; a message not sent is pushed out."""

    def __enter__(self) -> EmailChannel:
        """Start a batch; the connection opens on the first send (its errors are that send's)."""
        self._batch = True
        self._open_failed = None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._batch = False
        self._open_failed = None
        self._quit()

    def prepare(self, message: Message) -> None:
        """Build `message`'s MIME now (the dispatcher does while the message before it is on
        the wire); `send(message)` takes it. A message that cannot be built is left for
        `send`, which fails it in its place."""
        try:
            data = mime_bytes(message, self.sender, self.domain_for_ids)
        except ChannelError:
            return
        self._ready[message.key] = (message, data)
        while len(self._ready) > READY:
            del self._ready[next(iter(self._ready))]

    def send(self, message: Message) -> Receipt:
        return self.begin(message).wait()

    def begin(self, message: Message) -> Pending:
        """Send `message` up to its body; the returned `wait()` reads the server's verdict.

        The dispatcher does its next message's work in between (`Pipelined`): the server
        reads and checks a 60 kB body meanwhile, which took it most of a message's time.
        Nothing may use the channel until `wait()` has returned."""
        ready = self._ready.pop(message.key, None)
        if ready is not None and ready[0] is message:
            data = ready[1]
        else:
            data = mime_bytes(message, self.sender, self.domain_for_ids)
        try:
            self._deliver(message.recipient.strip(), data)  # validated by mime_bytes
        except BaseException:
            if not self._batch:
                self._quit()
            raise
        return _Verdict(self, message)

    def _deliver(self, to: str, data: bytes) -> None:
        """`hand_over` on the open connection, reconnecting once if it was dropped."""
        for attempt in (1, 2):
            try:
                return hand_over(self._connection(), self.sender.addr_spec, to, data)
            except _Dropped as exc:
                self._discard()
                if attempt == 2:
                    raise ChannelError(
                        f"SMTP connection lost before the message was sent: {exc}",
                        permanent=False,
                        code="disconnected",
                    ) from exc
                log.info("email.reconnect", reason=mask_text(str(exc)))
            except OutcomeUnknown:
                self._discard()
                raise
            except ChannelError:
                self._reset()
                raise

    # ----------------------------------------------------------------------- connection

    def _connection(self) -> smtplib.SMTP:
        """The open connection, or a new one. Once opening failed in a batch, the rest of the
        batch fails at once the same way: no wait for a timeout per message, and no login
        retried per message (mail servers lock accounts after repeated failed logins)."""
        if self._conn is not None:
            return self._conn
        if self._open_failed is not None:
            raise _again(self._open_failed)
        try:
            self._conn = self._open()
        except ChannelError as exc:
            self._open_failed = exc if self._batch else None
            raise
        return self._conn

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        assert s.host is not None
        try:
            conn = (
                smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.tls_context())
                if s.ssl
                else smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            )
        except ssl.SSLCertVerificationError as exc:
            raise _channel_down("certificate not trusted", exc) from exc
        except smtplib.SMTPResponseException as exc:  # a 4xx/5xx greeting
            raise _reply_error("connect", exc.smtp_code, exc.smtp_error) from exc
        except OSError as exc:  # refused, timed out, name not found, dropped
            raise ChannelError(
                f"cannot connect to {s.host}:{s.port}: {exc}", permanent=False, code="connect"
            ) from exc
        try:
            self._start(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _start(self, conn: smtplib.SMTP) -> None:
        """STARTTLS and AUTH, when configured; no keyring, no prompt."""
        s = self.settings
        try:
            if s.starttls and not s.ssl:
                conn.starttls(context=self.tls_context())
            if s.user and s.password:
                conn.login(s.user, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise _channel_down("authentication failed", exc) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise _channel_down("server lacks a required extension", exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise _channel_down("certificate not trusted", exc) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error("STARTTLS/AUTH", exc.smtp_code, exc.smtp_error) from exc
        except OSError as exc:
            raise ChannelError(
                f"SMTP connection failed while starting: {exc}", permanent=False, code="connect"
            ) from exc

    def _reset(self) -> None:
        """After a refused MAIL/RCPT/DATA: RSET so the connection serves the next message."""
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except OSError:
            self._discard()

    def _discard(self) -> None:
        """Drop the connection without QUIT (its state is unknown)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _quit(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except OSError:  # smtplib errors are OSErrors too
            conn.close()
