"""The live-chat connector: a website widget (see README.md beside this file for the protocol).

Visitors are contacts whose identity on the channel is ``visitor:<uuid>`` (anonymous, from a
signed session token) or ``user:<id>`` (the host site's own user id, accepted only with a valid
HMAC of it made with the channel's identity secret). A visitor's message reaches the core like
any other channel's: its frame is journaled raw and ``parse`` turns it into an InboundMessage.
Replies are pushed to the visitor's widget over the channel layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets as secrets_module
import uuid as uuid_module
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _

from loket.connectors.base import (
    BadPayload,
    Capabilities,
    ChannelSetup,
    Connector,
    InvalidConfig,
    SendResult,
    WebhookRejected,
    WebhookRequest,
)
from loket.connectors.livechat import proactive
from loket.inbox.items import InboundAttachment, InboundContact, InboundItem, InboundMessage
from loket.inbox.models import Channel, Message

TOKEN_SALT = "loket.livechat.visitor"  # noqa: S105 - a signing salt, not a secret
OUTBOUND_ID_PREFIX = "lc_"
MAX_TEXT = 5000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
PRECHAT_TYPES = ("text", "email", "tel")
_PRECHAT_STANDARD = {"name": "text", "email": "email", "phone": "tel"}


def visitor_group(channel_id: int, visitor_key: str) -> str:
    """The channel-layer group of one visitor's open widgets (all tabs)."""
    digest = hashlib.sha256(visitor_key.encode()).hexdigest()[:32]
    return f"livechat-{channel_id}-{digest}"


def issue_token(channel: Channel, visitor_key: str, profile: dict | None = None) -> str:
    """A signed session token: the visitor's key on this channel and what the pre-chat form
    told us (sent along with each message, so the contact gets it on the first one)."""
    data = {"c": channel.pk, "v": visitor_key, "p": profile or {}}
    return signing.dumps(data, salt=TOKEN_SALT, compress=True)


def read_token(channel: Channel, token: str) -> tuple[str, dict] | None:
    """(visitor key, pre-chat profile) of a token Loket gave for this channel, else None."""
    try:
        data = signing.loads(
            token or "", salt=TOKEN_SALT, max_age=settings.LOKET_WIDGET_TOKEN_DAYS * 86400
        )
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("c") != channel.pk or not data.get("v"):
        return None
    profile = data.get("p") if isinstance(data.get("p"), dict) else {}
    return str(data["v"]), profile


def new_visitor_key() -> str:
    return f"visitor:{secrets_module.token_hex(16)}"


def identity_hmac(channel: Channel, user_id: str) -> str:
    secret = channel.secrets.get("identity_secret", "")
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(channel: Channel, user_id: str, given: str) -> bool:
    if not user_id or not given or not channel.secrets.get("identity_secret"):
        return False
    return hmac.compare_digest(identity_hmac(channel, user_id), given.strip().lower())


def own_origin() -> str:
    """Loket's public origin: where the loader points the frame, so the widget's requests and
    socket come from it."""
    parts = urlsplit(settings.LOKET_PUBLIC_URL.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"


def origin_allowed(channel: Channel, origin: str, host: str = "") -> bool:
    """Whether a browser page at ``origin`` (an ``Origin`` header) may use this channel's
    widget API and socket: Loket's own origin (``LOKET_PUBLIC_URL``, or ``host``: the host the
    request itself was sent to, i.e. a same-origin request) or one of the channel's allowed
    websites. Anything else, ``null`` included, is not. An empty allow-list admits no other
    site: any site may then embed the frame (``frame-ancestors *``), but only the frame, on
    Loket's origin, talks to Loket."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        return False
    normal = f"{parts.scheme}://{parts.netloc}"
    if normal == own_origin() or (host and parts.netloc == host.strip().lower()):
        return True
    return normal in (channel.settings.get("allowed_origins") or [])


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidConfig(f"{value!r} is not an origin like https://www.example.com")
    return f"{parts.scheme}://{parts.netloc}".lower()


DEFAULTS: dict[str, Any] = {
    "title": "",
    "greeting": "",
    "color": "#1f5fd1",
    "position": "right",
    "allowed_origins": [],
    "require_identity": False,
    "branding": True,
    "reply_time": "",
    "prechat": {"enabled": False, "fields": []},
    "texts": {},
    # An email channel of the workspace: outside business hours the widget asks for an email
    # address, and replies to a visitor who has left are emailed from it (the answer threads
    # back by the [#number] in the subject).
    "continuity_email_channel": "",
    # Rules that open the widget with a message (see proactive.py).
    "proactive": [],
    "team_photos": [],  # stored names (photos.py), set by photos.replace, never free text
}


class LiveChatConnector(Connector):
    key = "livechat"
    label = _("Live chat")
    capabilities = Capabilities(
        text=True,
        media=True,
        typing=True,
        read_receipts=True,
        delivery_statuses=True,
        choices=10,  # buttons under the message in the widget
        choice_title_max=40,
    )

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, config: dict[str, Any], *, existing: Channel | None = None) -> ChannelSetup:
        current = {**DEFAULTS, **(existing.settings if existing else {})}
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise InvalidConfig(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {**current, **config}
        out = {
            "title": _text(values["title"], "title", 100),
            "greeting": _text(values["greeting"], "greeting", 500),
            "reply_time": _text(values["reply_time"], "reply_time", 100),
            "require_identity": bool(values["require_identity"]),
            "branding": bool(values["branding"]),
        }
        if not _COLOR.match(str(values["color"])):
            raise InvalidConfig("color must look like #1f5fd1")
        out["color"] = str(values["color"]).lower()
        if values["position"] not in ("right", "left"):
            raise InvalidConfig("position must be right or left")
        out["position"] = values["position"]
        origins = values["allowed_origins"]
        if isinstance(origins, str):
            origins = [o for o in re.split(r"[\s,]+", origins) if o]
        if not isinstance(origins, list):
            raise InvalidConfig("allowed_origins must be a list of origins")
        out["allowed_origins"] = sorted({_origin(o) for o in origins})[:50]
        out["prechat"] = _prechat(values["prechat"])
        out["proactive"] = proactive.clean_rules(values["proactive"])
        continuity = str(values.get("continuity_email_channel") or "").strip()
        if continuity:
            try:
                continuity = str(uuid_module.UUID(continuity))
            except ValueError:
                raise InvalidConfig(
                    "continuity_email_channel must be an email channel's id (uuid)"
                ) from None
        out["continuity_email_channel"] = continuity
        photos = values.get("team_photos") or []
        prefix = f"livechat/{existing.uuid.hex}/" if existing else ""
        if not isinstance(photos, list) or not all(
            isinstance(p, str) and prefix and p.startswith(prefix) for p in photos
        ):
            photos = list(existing.settings.get("team_photos") or []) if existing else []
        out["team_photos"] = photos[:3]
        texts = values["texts"]
        if not isinstance(texts, dict) or not all(
            isinstance(lang, str) and isinstance(entries, dict) for lang, entries in texts.items()
        ):
            raise InvalidConfig("texts must map a language to {key: text}")
        out["texts"] = {
            lang[:10]: {str(k)[:50]: _text(v, f"texts.{lang}.{k}", 500) for k, v in entries.items()}
            for lang, entries in texts.items()
        }
        if existing is not None:
            return ChannelSetup(settings=out, secrets=existing.secrets)
        secret = secrets_module.token_hex(32)
        return ChannelSetup(
            settings=out, secrets={"identity_secret": secret}, shown_once={"secret": secret}
        )

    # -- inbound --------------------------------------------------------------------------------
    def verify(self, channel: Channel, request: WebhookRequest) -> None:
        # Visitors' messages come through the widget's own endpoints, never through /hooks/.
        raise WebhookRejected("live-chat channels do not take webhooks", 404)

    def parse(self, channel: Channel, body: bytes, meta: dict[str, Any]) -> list[InboundItem]:
        """A visitor's message as the widget endpoints journal it:
        ``{"visitor": key, "client_id", "text", "contact": {name, email, phone, locale},
        "page": {url, title}}``, and ``"choice": {id, title}`` for a tapped button."""
        try:
            frame = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadPayload(f"not JSON: {exc}") from None
        if not isinstance(frame, dict) or not frame.get("visitor") or not frame.get("client_id"):
            raise BadPayload("a widget message needs a visitor and a client_id")
        text = str(frame.get("text") or "").strip()
        files = []
        for item in frame.get("files") or []:
            try:
                content = base64.b64decode(item["content"], validate=True)
            except (KeyError, TypeError, ValueError, binascii.Error):
                raise BadPayload("a widget file needs base64 content") from None
            files.append(
                InboundAttachment(
                    filename=str(item.get("name") or "file")[:200],
                    content_type=str(item.get("content_type") or "application/octet-stream")[:127],
                    content=content,
                )
            )
        if not text and not files:
            raise BadPayload("a widget message needs text or a file")
        contact = frame.get("contact") or {}
        data: dict[str, Any] = {
            "livechat": {
                "page": frame.get("page") or {},
                **(frame.get("client") if isinstance(frame.get("client"), dict) else {}),
            }
        }
        choice = frame.get("choice")
        if isinstance(choice, dict) and choice.get("id"):
            # A tapped button under a bot's or agent's question (see delivery.as_widget_message).
            data["choice"] = {
                "id": str(choice["id"])[:256],
                "title": str(choice.get("title") or text)[:256],
            }
        return [
            InboundMessage(
                external_id=f"{frame['visitor']}:{str(frame['client_id'])[:100]}"[:255],
                contact=InboundContact(
                    external_id=str(frame["visitor"])[:255],
                    name=str(contact.get("name") or "")[:200],
                    email=str(contact.get("email") or "")[:254],
                    phone=str(contact.get("phone") or "")[:40],
                    locale=str(contact.get("locale") or "")[:10],
                ),
                text=text[:MAX_TEXT],
                attachments=tuple(files),
                data=data,
            )
        ]

    # -- the agent's side ------------------------------------------------------------------------
    def conversation_opened(self, conversation) -> None:
        from loket.connectors.livechat import delivery

        delivery.mark_seen_by_agent(conversation)

    def sidebar(self, conversation) -> dict[str, Any] | None:
        from loket.connectors.livechat import delivery

        return delivery.visitor_context(conversation)

    # -- outbound -------------------------------------------------------------------------------
    def send(self, channel: Channel, message: Message) -> SendResult:
        from loket.connectors.livechat import continuity, delivery

        delivery.push_reply(channel, message)
        continuity.email_if_gone(channel, message)
        return SendResult(external_id=f"{OUTBOUND_ID_PREFIX}{message.pk}")


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidConfig(f"{field} must be text")
    value = value.strip()
    if len(value) > limit:
        raise InvalidConfig(f"{field} is longer than {limit} characters")
    return value


def _prechat(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidConfig("prechat must be {enabled, fields}")
    fields = value.get("fields") or []
    if not isinstance(fields, list) or len(fields) > 10:
        raise InvalidConfig("prechat.fields must be a list of at most 10 fields")
    out = []
    seen = set()
    for index, field in enumerate(fields):
        if not isinstance(field, dict) or not re.fullmatch(
            r"[a-z][a-z0-9_]{0,39}", str(field.get("name", ""))
        ):
            raise InvalidConfig(f"prechat.fields[{index}] needs a name like 'order_number'")
        if field["name"] in seen:
            raise InvalidConfig(f"prechat.fields[{index}]: '{field['name']}' is asked twice")
        seen.add(field["name"])
        kind = field.get("type", "text")
        if kind not in PRECHAT_TYPES:
            raise InvalidConfig(f"prechat.fields[{index}].type must be one of text, email, tel")
        # The contact's own fields keep their kind (a custom question cannot take their names).
        expected = _PRECHAT_STANDARD.get(field["name"])
        if expected is not None and kind != expected:
            raise InvalidConfig(
                f"prechat.fields[{index}]: '{field['name']}' is the contact's own field, "
                f"of type {expected}"
            )
        out.append(
            {
                "name": field["name"],
                "label": _text(field.get("label") or field["name"], "label", 100),
                "type": kind,
                "required": bool(field.get("required")),
            }
        )
    return {"enabled": bool(value.get("enabled")), "fields": out}
