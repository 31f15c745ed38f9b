"""The printable 告知书 (附件5) as a DOCX, with the receipt line (签收人).

The layout is built once per process with python-docx, holding tokens; each notice
then only substitutes escaped text into ``word/document.xml`` and re-zips the parts —
about a millisecond, where building a document from scratch costs tens, which matters
when ten thousand notices go out. The body paragraphs come from the Jinja template
``notices/repair_notice/docx.txt.j2`` (paragraphs separated by blank lines), so the
wording follows the record's rule set like the e-mail does.

The planner renders the DOCX when it renders the e-mail and the SMS, and keeps the bytes
in the outbox payload (`docx_payload`, base64); the dispatcher hands that base64 text to
the e-mail as it is (`docx_base64`).
A DOCX is a pure function of its four texts: every zip entry carries the same fixed
timestamp, not the host's local time, so the same notice gives the same bytes anywhere.

The texts lose the characters XML cannot hold (control characters, `strip_controls`)
before they are escaped in, and `docx_payload` parses the document back
(`pipeline.office.xml.check_docx`) before the planner may queue it: a notice that would
not open is never planned, so never sent.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

import docx
import qrcode
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from qrcode.image.pure import PyPNGImage

from pipeline.office.text import strip_controls
from pipeline.office.xml import InvalidDocument, check_docx

TITLE = "行政处罚信用修复告知书"
DOCX_FILENAME = f"{TITLE}.docx"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TOKENS = {
    "entity": "⟦ENTITY⟧",
    "body": "⟦BODY⟧",
    "issuer": "⟦ISSUER⟧",
    "date": "⟦DATE⟧",
    "link": "⟦LINK⟧",
}
QR_CM = 3.0
"""Printed size of the answer link's QR code (a phone reads it at arm's length)."""
FONT = "SimSun"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""Every zip entry's timestamp: the earliest a zip can hold, as reproducible builds use."""


def _font(run: object, size: int, bold: bool = False) -> None:
    run.font.size = Pt(size)  # type: ignore[attr-defined]
    run.font.bold = bold  # type: ignore[attr-defined]
    run.font.name = FONT  # type: ignore[attr-defined]
    run._element.rPr.rFonts.set(qn("w:eastAsia"), FONT)  # type: ignore[attr-defined]  # Chinese glyphs


def qr_png(link: str) -> bytes:
    """The QR code of `link` as a PNG (pure Python: no imaging library needed)."""
    image = qrcode.make(link, image_factory=PyPNGImage, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def _layout(with_link: bool = False) -> bytes:
    document = docx.Document()
    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(title.add_run(TITLE), 18, bold=True)
    _font(document.add_paragraph().add_run(TOKENS["entity"] + "："), 14)
    body = document.add_paragraph()
    body.paragraph_format.first_line_indent = Pt(28)
    body.paragraph_format.line_spacing = 1.5
    _font(body.add_run(TOKENS["body"]), 14)
    if with_link:  # the answer page: its short address and a QR code a phone can read
        answer = document.add_paragraph()
        _font(answer.add_run("扫码或访问以下网址在线答复：" + TOKENS["link"]), 12)
        document.add_picture(
            io.BytesIO(qr_png("https://example.org/r/00000000000")), width=Cm(QR_CM)
        )
    document.add_paragraph()
    table = document.add_table(rows=2, cols=2)
    for row, (left, right) in enumerate(
        (("签收人：", TOKENS["issuer"]), ("      年    月    日", TOKENS["date"]))
    ):
        _font(table.cell(row, 0).paragraphs[0].add_run(left), 14)
        cell = table.cell(row, 1).paragraphs[0]
        cell.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _font(cell.add_run(right), 14)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


GENERATED = ("word/document.xml",)
"""The part each notice changes (and the QR image, a PNG we make): the others are the
layout's, checked once."""


@lru_cache(maxsize=2)
def _parts(with_link: bool = False) -> tuple[bytes, str, str | None]:
    """A zip of every part but the document and the QR image (compressed once), the
    document XML, and the QR image's part name (with a link)."""
    layout = _layout(with_link)
    check_docx(layout, "the 告知书 layout")
    with zipfile.ZipFile(io.BytesIO(layout)) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    document = parts.pop("word/document.xml").decode("utf-8")
    media = next((n for n in parts if n.startswith("word/media/")), None)
    if media is not None:
        del parts[media]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(_entry(name), data)
    return out.getvalue(), document, media


def _entry(name: str) -> zipfile.ZipInfo:
    """A deflated zip entry stamped `ZIP_TIME` (`writestr(name)` would stamp the host's now)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16  # what writestr(name) gives: -rw-------
    return info


_PARAGRAPH = re.compile(
    r"<w:p[ >](?:(?!<w:p[ >]).)*?" + re.escape(TOKENS["body"]) + r".*?</w:p>", re.S
)


def render_docx(
    entity_name: str, body: str, issuer: str, date_text: str, link: str | None = None
) -> bytes:
    """The notice for one company; `body` is plain text, paragraphs separated by blank lines.

    With `link` (the company's answer page) it also prints the address and its QR code.
    """
    entity_name, body, issuer, date_text = map(
        strip_controls, (entity_name, body, issuer, date_text)
    )
    parts, xml, media = _parts(link is not None)
    paragraphs = [p.strip().replace("\n", "") for p in re.split(r"\n\s*\n", body) if p.strip()]
    template = _PARAGRAPH.search(xml)
    assert template is not None, "the DOCX layout lost its body token"
    block = "".join(template.group(0).replace(TOKENS["body"], escape(p)) for p in paragraphs)
    xml = xml[: template.start()] + block + xml[template.end() :]
    values = (
        ("entity", entity_name),
        ("issuer", issuer),
        ("date", date_text),
        ("link", link or ""),
    )
    for key, value in values:
        xml = xml.replace(TOKENS[key], escape(value))
    # Appending the changed parts to the pre-compressed rest costs a copy, not a recompression.
    out = io.BytesIO(parts)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_entry("word/document.xml"), xml.encode("utf-8"))
        if link is not None and media is not None:
            zf.writestr(_entry(media), qr_png(link))
    return out.getvalue()


def docx_payload(
    entity_name: str, body: str, issuer: str, date_text: str, link: str | None = None
) -> dict[str, Any]:
    """The notice as the outbox keeps it: its texts, and the DOCX rendered from them (base64).

    Kept in the payload (JSON) rather than as a file beside the outbox: it is written in
    the same transaction as its row (a rolled-back or --dry-run plan leaves nothing
    behind), a fallback row copies it with the rest of the payload, it travels with the
    database (backups, a dispatcher on another host) and shows exactly what was sent. The
    cost is ~50 kB of base64 per repair notice.
    """
    entity_name, body, issuer, date_text = map(
        strip_controls, (entity_name, body, issuer, date_text)
    )
    content = render_docx(entity_name, body, issuer, date_text, link)
    check_docx(content, f"the 告知书 to {entity_name}", GENERATED)  # raises InvalidDocument
    return {
        "entity_name": entity_name,
        "issuer": issuer,
        "date": date_text,
        "body": body,
        "content": base64.b64encode(content).decode("ascii"),
        "checked": True,
    }


def docx_base64(spec: dict[str, Any]) -> str:
    """The DOCX of a payload's `docx` in base64, as the planner stored it when it checked it
    (``checked``: planned by `docx_payload`) — the dispatcher puts that text in the e-mail as
    is, with no decoding, parsing or re-encoding per message; otherwise `docx_content`'s."""
    content = spec.get("content")
    if spec.get("checked") is True and isinstance(content, str):
        return content
    return base64.b64encode(docx_content(spec)).decode("ascii")


def docx_content(spec: dict[str, Any]) -> bytes:
    """The DOCX bytes of a payload's `docx`, as the planner rendered them.

    A row planned before the planner checked its DOCX may hold one that does not open
    (control characters in a name): that one is rendered again from its texts, which
    `render_docx` now cleans, rather than sent broken. A DOCX the planner checked
    (``checked``) is not parsed again.
    """
    if "content" in spec:
        content = base64.b64decode(spec["content"])
        if spec.get("checked") is True:
            return content
        try:
            check_docx(content, "a planned 告知书", GENERATED)
        except InvalidDocument:
            pass
        else:
            return content
    # A row planned before the planner rendered the DOCX holds only its texts, all fixed at
    # plan time (the date too): the same document, rendered from them once, here.
    return render_docx(spec["entity_name"], spec["body"], spec["issuer"], spec["date"])


def docx_text(data: bytes) -> str:
    """All paragraph and table text of a DOCX (for tests and previews)."""
    document = docx.Document(io.BytesIO(data))
    lines = [p.text for p in document.paragraphs]
    lines += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join(lines)
