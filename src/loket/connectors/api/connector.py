"""The API channel: any system can bring its own channel.

Inbound: ``POST /hooks/api/<channel uuid>/`` with a JSON body signed in ``X-Loket-Signature``.
Outbound: replies are POSTed as signed JSON to the channel's ``outbound_url``.
See README.md beside this file for the formats.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket import http
from loket.connectors import signing
from loket.connectors.base import (
    BadPayload,
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    PermanentSendError,
    SendResult,
    TransientSendError,
    WebhookRejected,
    WebhookRequest,
)
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    StatusUpdate,
)
from loket.inbox.models import Channel, DeliveryStatus, Message
from loket.inbox.services import choices, outbound

OUTBOUND_ID_PREFIX = "out_"


def _text(value: Any, field: str, *, required: bool = False, limit: int = 255) -> str:
    if value is None or value == "":
        if required:
            raise BadPayload(f"'{field}' is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadPayload(f"'{field}' must be a string")
    text = str(value)
    if len(text) > limit:
        raise BadPayload(f"'{field}' is longer than {limit} characters")
    return text


def _timestamp(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload("'sent_at' must be an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class ApiConnector(Connector):
    key = "api"
    label = _("API channel")
    capabilities = Capabilities(
        text=True,
        media=True,
        delivery_statuses=True,
        read_receipts=True,
        choices=100,  # passed through in the outbound JSON: the receiver shows them
    )

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        url = str(config.get("outbound_url") or "").strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidConfig(gettext("outbound_url must be an http(s) URL"))
        unknown = set(config) - {"outbound_url"}
        if unknown:
            raise InvalidConfig(f"unknown setting(s): {', '.join(sorted(unknown))}")
        if existing is not None:
            return ChannelSetup(settings={"outbound_url": url}, secrets=existing.secrets)
        secret = "whsec_" + secrets.token_urlsafe(32)
        return ChannelSetup(
            settings={"outbound_url": url},
            secrets={"secret": secret},
            shown_once={"secret": secret},
        )

    # -- inbound --------------------------------------------------------------------------------
    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        try:
            signing.verify(
                channel.secrets.get("secret", ""),
                request.body,
                request.headers.get(signing.HEADER.lower(), ""),
                tolerance=settings.LOKET_SIGNATURE_TOLERANCE_SECONDS,
            )
        except signing.InvalidSignature as exc:
            raise WebhookRejected(str(exc), 401) from exc

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadPayload("body must be a JSON object")
        kind = payload.get("type", "message")
        if kind == "message":
            return [self._message(payload)]
        if kind == "status":
            return [self._status(payload)]
        return [Ignored(f"unknown event type {str(kind)[:50]!r}")]

    def _message(self, payload: dict[str, Any]) -> InboundMessage:
        contact = payload.get("contact")
        if not isinstance(contact, dict):
            raise BadPayload("'contact' must be an object with an 'id'")
        email = _text(contact.get("email"), "contact.email", limit=254)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise BadPayload("'contact.email' is not a valid email address") from None
        attachments = payload.get("attachments") or []
        if not isinstance(attachments, list):
            raise BadPayload("'attachments' must be a list")
        files = []
        for index, item in enumerate(attachments):
            if not isinstance(item, dict) or not item.get("url"):
                raise BadPayload(f"attachments[{index}] needs a 'url'")
            url = _text(item["url"], f"attachments[{index}].url", limit=2000)
            if urlsplit(url).scheme not in ("http", "https"):
                raise BadPayload(f"attachments[{index}].url must be http(s)")
            files.append(
                InboundAttachment(
                    filename=_text(item.get("filename"), "filename") or "attachment",
                    content_type=_text(item.get("content_type"), "content_type", limit=127)
                    or "application/octet-stream",
                    url=url,
                )
            )
        text = _text(payload.get("text"), "text", limit=65536)
        data: dict[str, Any] = {}
        choice = payload.get("choice")
        if choice is not None:
            if not isinstance(choice, dict) or not (choice.get("id") or choice.get("title")):
                raise BadPayload("'choice' must be an object with an 'id'")
            ident = _text(choice.get("id"), "choice.id", limit=256)
            title = _text(choice.get("title"), "choice.title", limit=256)
            data["choice"] = {"id": ident or title, "title": title or ident}
            text = text or data["choice"]["title"]
        if not text and not files:
            raise BadPayload("a message needs 'text' or 'attachments'")
        return InboundMessage(
            external_id=_text(payload.get("id"), "id", required=True),
            contact=InboundContact(
                external_id=_text(contact.get("id"), "contact.id", required=True),
                name=_text(contact.get("name"), "contact.name", limit=200),
                email=email,
                phone=_text(contact.get("phone"), "contact.phone", limit=40),
                locale=_text(contact.get("locale"), "contact.locale", limit=10),
            ),
            text=text,
            sent_at=_timestamp(payload.get("sent_at")),
            attachments=tuple(files),
            data=data,
        )

    def _status(self, payload: dict[str, Any]) -> InboundItem:
        status = payload.get("status")
        if status not in (DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED):
            raise BadPayload("'status' must be one of delivered, read, failed")
        return StatusUpdate(
            external_id=_text(payload.get("id"), "id", required=True),
            status=status,
            error=_text(payload.get("error"), "error", limit=2000),
            at=_timestamp(payload.get("at")),
        )

    # -- outbound -------------------------------------------------------------------------------
    def outbound_body(self, channel: Channel, message: Message) -> bytes:
        identity = outbound.recipient_id(message)
        author = message.author_member.display_name if message.author_member_id else ""
        body: dict[str, Any] = {
            "type": "message",
            "id": f"{OUTBOUND_ID_PREFIX}{message.pk}",
            "conversation_id": message.conversation_id,
            "contact": {"id": identity},
            "text": message.text,
            "author": {"name": author},
            "created_at": message.created_at.isoformat(),
        }
        items = choices.native_choices(message)
        if items:
            body["choices"] = {"items": items, "prompt": choices.prompt_of(message)}
        return json.dumps(body, separators=(",", ":")).encode()

    def send(self, channel: Channel, message: Message) -> SendResult:
        url = channel.settings.get("outbound_url")
        if not url:
            raise PermanentSendError("this API channel has no outbound_url to deliver replies to")
        body = self.outbound_body(channel, message)
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.sign(channel.secrets["secret"], body),
        }
        try:
            with http.client() as client:
                response = client.post(url, content=body, headers=headers)
        except http.BlockedAddress as exc:
            raise PermanentSendError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise TransientSendError(f"could not reach {urlsplit(url).hostname}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return SendResult(external_id=f"{OUTBOUND_ID_PREFIX}{message.pk}")
        detail = f"HTTP {response.status_code}: {response.text[:300]}".strip()
        if http.is_transient_status(response.status_code):
            raise TransientSendError(detail, http.retry_after_seconds(response))
        raise PermanentSendError(detail)

    def check_connection(self, channel: Channel) -> None:
        if not channel.settings.get("outbound_url"):
            raise InvalidConfig("set outbound_url so replies can be delivered")
