"""The file channel: notices written under var/outbox/ instead of sent.

The default when no SMTP server or SMS gateway is configured (the quick start), and a
hand-off for sites where another system picks the files up. E-mail becomes an .eml
file (the exact message an SMTP server would get), SMS a .json file, and the DOCX of a
告知书 is written beside it for printing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import TracebackType

from pipeline.channels.base import Message, Receipt


def file_stem(key: str) -> str:
    """A safe, stable file name for an outbox key (keys hold Chinese text and colons)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


class FileChannel:
    def __init__(
        self,
        name: str,
        folder: Path,
        sender: str = "credit-repair@localhost",
        sender_name: str = "",
    ) -> None:
        self.name = name
        self.folder = folder
        self.delivers = False
        """A file reaches nobody: the outbox row becomes `written`, never `sent`."""
        self.sender = sender
        self.sender_name = sender_name

    def send(self, message: Message) -> Receipt:
        folder = self.folder / message.channel
        folder.mkdir(parents=True, exist_ok=True)
        stem = file_stem(message.key)
        if message.channel == "email":
            from pipeline.channels.email import (
                render_eml,
                sender_address,
            )  # the MIME SMTP would carry

            path = folder / f"{stem}.eml"
            path.write_bytes(
                render_eml(message, sender_address(self.sender, self.sender_name or None))
            )
        else:
            path = folder / f"{stem}.json"
            body = {
                "id": message.key,
                "phone": message.recipient,
                "template": message.sms_template,
                "params": message.sms_params,
                "text": message.text,
            }
            path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
        for attachment in message.attachments:
            (folder / f"{stem}-{attachment.filename}").write_bytes(attachment.content)
        return Receipt(provider_id=str(path), detail={"file": str(path)}, delivered=self.delivers)

    def __enter__(self) -> FileChannel:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class ManualChannel(FileChannel):
    """No usable address: a task for the responsible person (a call, or paper with the DOCX).

    Writing the task is not a delivery: the ledger counts the company as told only when
    the delivery is confirmed with `credit-repair ledger set ... --progress 1`.
    """

    def send(self, message: Message) -> Receipt:
        folder = self.folder / "manual"
        folder.mkdir(parents=True, exist_ok=True)
        stem = file_stem(message.key)
        task = {
            "id": message.key,
            "task": "deliver by phone or on paper, then confirm with `credit-repair ledger set`",
            "subject": message.subject,
            "text": message.text,
            "attachments": [f"{stem}-{a.filename}" for a in message.attachments],
        }
        (folder / f"{stem}.json").write_text(
            json.dumps(task, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        for attachment in message.attachments:
            (folder / f"{stem}-{attachment.filename}").write_bytes(attachment.content)
        return Receipt(provider_id="manual-task", detail={"task": str(folder / f"{stem}.json")})
