"""Sending a reply through the WhatsApp Cloud API: ``POST {graph}/{phone number id}/messages``.

A reply becomes one WhatsApp message when it can (a text; a file with the text as its caption;
a template) and several otherwise (several files, a voice note with text, a text longer than
WhatsApp allows). The first part's id is the reply's; the later parts' ids are kept in
``data["whatsapp_parts"]`` (all parts' ids, in order), so their statuses are recognised (a
failure is reported on the reply, see inbound.py) and a retry after a failure halfway sends
only what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from loket.connectors.base import (
    PermanentSendError,
    SendResult,
    TransientSendError,
    attachment_bytes,
)
from loket.connectors.meta import graph
from loket.connectors.text import split_text
from loket.connectors.whatsapp.inbound import PARTS_KEY
from loket.inbox.models import Attachment, AttachmentStatus, Channel, Message
from loket.inbox.services import choices, outbound

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
MB = 1024 * 1024
# What WhatsApp plays or shows inline, with its size limits; anything else goes as a document.
INLINE_TYPES = {
    "image": ({"image/jpeg", "image/png"}, 5 * MB),
    "video": ({"video/mp4", "video/3gpp"}, 16 * MB),
    "audio": ({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}, 16 * MB),
}
DOCUMENT_LIMIT = 100 * MB
# Interactive messages (Cloud API): up to 3 reply buttons (title 20, id 256 characters) or a
# list of up to 10 rows (title 24, description 72; its button text 20); body text 1024.
INTERACTIVE_BODY_LIMIT = 1024
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
LIST_BUTTON_MAX = 20
CHOICE_ID_MAX = 256


@dataclass(frozen=True)
class Part:
    kind: str  # text | media | template | choices
    text: str = ""
    attachment: Attachment | None = None
    media_kind: str = ""


def media_kind(content_type: str, size: int) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    for kind, (types, limit) in INLINE_TYPES.items():
        if base in types and size <= limit:
            return kind
    return "document"


def plan(message: Message) -> list[Part]:
    if isinstance((message.data or {}).get("template"), dict):
        return [Part("template")]
    files = list(message.attachments.filter(status=AttachmentStatus.STORED).order_by("pk"))
    text = (message.text or "").strip()
    kinds = [media_kind(f.content_type, f.size) for f in files]
    parts: list[Part] = []
    if choices.native_choices(message):
        # Buttons or a list last, with the text as their body when it fits (else the text
        # goes before them and the list's button text is the body); files first, uncaptioned.
        body = text if len(text) <= INTERACTIVE_BODY_LIMIT else ""
        for attachment, kind in zip(files, kinds, strict=True):
            parts.append(Part("media", "", attachment, kind))
        if text and not body:
            parts.extend(
                Part("text", piece)
                for piece in split_text(text, lambda piece: len(piece) <= TEXT_LIMIT)
            )
        return [*parts, Part("choices", body)]
    caption = ""
    if files and kinds[0] != "audio" and text and len(text) <= CAPTION_LIMIT:
        caption, text = text, ""
    pieces = split_text(text, lambda piece: len(piece) <= TEXT_LIMIT)
    parts.extend(Part("text", piece) for piece in pieces)
    for index, (attachment, kind) in enumerate(zip(files, kinds, strict=True)):
        parts.append(Part("media", caption if index == 0 else "", attachment, kind))
    return parts


def _envelope(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """The message to a WhatsApp number (``to``) or, for a customer known only by their
    business-scoped user id, to that id (``recipient``)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        ("to" if to.isdigit() else "recipient"): to,
        "type": kind,
        kind: content,
    }


def text_body(to: str, text: str) -> dict[str, Any]:
    return _envelope(to, "text", {"preview_url": False, "body": text})


def template_body(to: str, spec: dict[str, Any]) -> dict[str, Any]:
    components = []
    for kind in ("header", "body"):
        values = [str(v) for v in spec.get(kind) or []]
        if values:
            components.append(
                {"type": kind, "parameters": [{"type": "text", "text": v} for v in values]}
            )
    content: dict[str, Any] = {
        "name": str(spec.get("name") or ""),
        "language": {"code": str(spec.get("language") or "")},
    }
    if components:
        content["components"] = components
    return _envelope(to, "template", content)


def interactive_body(to: str, message: Message, body: str) -> dict[str, Any]:
    """Reply buttons for up to 3 options without descriptions, else a list (one section)."""
    items = choices.native_choices(message)
    if len(items) > ROWS_MAX:
        raise PermanentSendError(
            _("WhatsApp shows at most %(count)d options; this message has %(given)d.")
            % {"count": ROWS_MAX, "given": len(items)}
        )
    if any(len(item["id"]) > CHOICE_ID_MAX for item in items):
        raise PermanentSendError(_("An option's id is longer than WhatsApp allows (256)."))
    prompt = choices.shorten(choices.prompt_of(message), LIST_BUTTON_MAX)
    text = body or prompt
    if len(items) <= BUTTONS_MAX and not any(item["description"] for item in items):
        buttons = [
            {
                "type": "reply",
                "reply": {
                    "id": item["id"],
                    "title": choices.shorten(item["title"], BUTTON_TITLE_MAX),
                },
            }
            for item in items
        ]
        content = {"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}
    else:
        rows = []
        for item in items:
            row = {"id": item["id"], "title": choices.shorten(item["title"], ROW_TITLE_MAX)}
            if item["description"]:
                row["description"] = choices.shorten(item["description"], ROW_DESCRIPTION_MAX)
            rows.append(row)
        content = {
            "type": "list",
            "body": {"text": text},
            "action": {"button": prompt, "sections": [{"rows": rows}]},
        }
    return _envelope(to, "interactive", content)


def _reply_context(channel: Channel, message: Message) -> str:
    """The WhatsApp id of the message this reply quotes, if the reply names one."""
    given = (message.data or {}).get("reply_to")
    if isinstance(given, str):
        return given
    if not isinstance(given, dict):
        return ""
    if given.get("external_id"):
        return str(given["external_id"])
    if str(given.get("id") or "").isdigit():
        found = (
            Message.objects.filter(pk=int(given["id"]), channel=channel)
            .values_list("external_id", flat=True)
            .first()
        )
        return found or ""
    return ""


class Sender:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.graph = graph.Graph(str(channel.secrets.get("access_token") or ""))
        self.number_id = str(channel.settings.get("phone_number_id") or "")

    def send(self, message: Message) -> SendResult:
        to = outbound.recipient_id(message)
        if not to:
            raise PermanentSendError(_("The customer has no WhatsApp number on this channel."))
        parts = plan(message)
        if not parts:
            raise PermanentSendError(_("There is nothing to send."))
        done: list[str] = list((message.data or {}).get(PARTS_KEY) or [])
        context = _reply_context(self.channel, message)
        for index, part in enumerate(parts):
            if index < len(done):
                continue  # sent before a failure of a later part
            try:
                body = self._body(message, part, to, caption=part.text)
                if index == 0 and context:
                    body["context"] = {"message_id": context}
                done.append(self._post(body))
            except PermanentSendError as exc:
                if done:
                    raise PermanentSendError(
                        _("Partly sent (%(sent)d of %(total)d parts): %(reason)s")
                        % {"sent": len(done), "total": len(parts), "reason": exc.reason}
                    ) from exc
                raise
            if len(parts) > 1:
                # After every part, so a retry after any failure (or a crash) sends only what
                # is still missing.
                outbound.keep_on_message(message, PARTS_KEY, list(done))
        return SendResult(external_id=done[0])

    def _body(self, message: Message, part: Part, to: str, *, caption: str) -> dict[str, Any]:
        if part.kind == "template":
            return template_body(to, message.data["template"])
        if part.kind == "text":
            return text_body(to, part.text)
        if part.kind == "choices":
            return interactive_body(to, message, part.text)
        attachment = part.attachment
        media_id = self._upload(attachment, part.media_kind)
        content: dict[str, Any] = {"id": media_id}
        if caption and part.media_kind != "audio":
            content["caption"] = caption
        if part.media_kind == "document":
            content["filename"] = attachment.filename
        return _envelope(to, part.media_kind, content)

    def _upload(self, attachment: Attachment, kind: str) -> str:
        if kind == "document" and attachment.size > DOCUMENT_LIMIT:
            raise PermanentSendError(
                _("%(name)s is larger than WhatsApp's 100 MB limit for files.")
                % {"name": attachment.filename}
            )
        content = attachment_bytes(attachment)
        content_type = attachment.content_type or "application/octet-stream"
        answer = graph.sending(
            lambda: self.graph.request(
                "POST",
                f"{self.number_id}/media",
                data={"messaging_product": "whatsapp", "type": content_type},
                files={"file": (attachment.filename, content, content_type)},
            )
        )
        media_id = str(answer.get("id") or "")
        if not media_id:
            raise TransientSendError(_("WhatsApp accepted the file but returned no media id."))
        return media_id

    def _post(self, body: dict[str, Any]) -> str:
        answer = graph.sending(lambda: self.graph.post(f"{self.number_id}/messages", body))
        sent = answer.get("messages")
        if isinstance(sent, list) and sent and isinstance(sent[0], dict) and sent[0].get("id"):
            return str(sent[0]["id"])
        raise PermanentSendError(
            _("WhatsApp answered without a message id; the message may not have been sent.")
        )
