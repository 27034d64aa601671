"""What the widget endpoints and the widget websocket do, in one place: start or resume a
visitor's session, take a message (through the journal, the one ingest path), the pre-chat
form, custom attributes, read receipts, and abuse limits."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import override

from loket.connectors.livechat import delivery, photos, proactive
from loket.connectors.livechat.connector import (
    MAX_TEXT,
    issue_token,
    new_visitor_key,
    read_token,
    verify_identity,
)
from loket.inbox.items import StatusUpdate
from loket.inbox.models import Channel, DeliveryStatus, Direction, Message
from loket.inbox.services import contacts, journal
from loket.inbox.services.ingest import receive


class WidgetError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


@dataclass
class Visitor:
    key: str
    profile: dict

    @property
    def verified(self) -> bool:
        return self.key.startswith("user:")


def allow(bucket: str, limit: int, window: int) -> None:
    """A fixed-window rate limit in the cache (shared by all processes with Redis)."""
    key = f"loket:rate:{bucket}:{int(time.time() // window)}"
    if cache.add(key, 1, window + 1):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, window + 1)
        return
    if count > limit:
        raise WidgetError(429, "rate_limited", _("Too many messages; wait a moment."), window)


def read_token_or_none(channel: Channel, token: str) -> Visitor | None:
    found = read_token(channel, token)
    return Visitor(*found) if found else None


def visitor_from_token(channel: Channel, token: str) -> Visitor:
    found = read_token(channel, token)
    if found is None:
        raise WidgetError(401, "bad_token", "the visitor token is not valid for this channel")
    return Visitor(*found)


def texts(channel: Channel, language: str) -> dict:
    """The widget's texts in the visitor's language, with the channel's own overrides."""
    with override(language):
        base = {
            "launcher_label": _("Chat with us"),
            "title": channel.settings.get("title") or channel.name,
            "greeting": channel.settings.get("greeting") or _("Hi! How can we help?"),
            "placeholder": _("Write a message…"),
            "send": _("Send"),
            "close": _("Close"),
            "online": _("We are online"),
            "away": _("We are away"),
            "typing": _("{name} is typing…"),
            "seen": _("Seen"),
            "retry": _("Retry"),
            "prechat_intro": _("Before we start, tell us who you are."),
            "prechat_submit": _("Start chat"),
            "required": _("Required"),
            "invalid_email": _("Enter a valid email address."),
            "offline_intro": _("Leave a message and we will answer by email."),
            "not_sent": _("Not sent."),
            "you": _("You"),
            "unread": _("{count} unread"),
            "reconnecting": _("Reconnecting…"),
            "error": _("Something went wrong. Please try again."),
            "automatic": _("Automatic message"),
            "attach": _("Attach a file"),
            "file_too_large": _("This file is too large."),
            "file_type": _("This kind of file cannot be sent."),
            "sending_file": _("Sending {name}…"),
            "csat_question": _("How did we do?"),
            "csat_star": _("{n} of 5"),
            "csat_comment": _("Anything to add? (optional)"),
            "csat_send": _("Send rating"),
            "csat_thanks": _("Thank you for your rating!"),
            "suggestions": _("Articles that may help"),
            "new_tab": _("(opens in a new tab)"),
            "emoji": _("Insert an emoji"),
        }
    overrides = (channel.settings.get("texts") or {}).get(language) or {}
    return {**base, **{k: v for k, v in overrides.items() if k in base and v}}


def prechat(channel: Channel) -> dict:
    """The pre-chat form; outside business hours with a continuity email channel it asks for
    an email address (required), so the answer can reach a visitor who has left."""
    from loket.connectors.livechat import continuity
    from loket.tenancy import hours

    form = channel.settings.get("prechat") or {"enabled": False, "fields": []}
    if (
        hours.is_open(channel.workspace, channel=channel)
        or continuity.email_channel(channel) is None
    ):
        return form
    fields = [dict(f) for f in form.get("fields", [])]
    names = {f["name"] for f in fields}
    if "name" not in names:
        fields.insert(0, {"name": "name", "label": _("Name"), "type": "text", "required": False})
    if "email" not in names:
        fields.append({"name": "email", "label": _("Email"), "type": "email", "required": True})
    for field in fields:
        if field["name"] == "email":
            field["required"] = True
    return {"enabled": True, "fields": fields}


def config(channel: Channel, language: str) -> dict:
    from loket.inbox.services import media

    s = channel.settings
    with override(language):
        form = prechat(channel)
    return {
        "title": s.get("title") or channel.name,
        "greeting": s.get("greeting") or "",
        "color": s.get("color") or "#1f5fd1",
        "position": s.get("position") or "right",
        "texts": texts(channel, language),
        "prechat": form,
        "branding": bool(s.get("branding", True)),
        "max_upload_bytes": min(
            settings.LOKET_WIDGET_UPLOAD_MAX_BYTES,
            media.max_attachment_bytes(channel.workspace_id),
        ),
        "upload_types": list(settings.LOKET_WIDGET_UPLOAD_TYPES),
        "team_photos": photos.urls(channel),
        "proactive": proactive.rules_for_widget(channel, language),
        "suggest": suggest_url(channel, language),
    }


def suggest_url(channel: Channel, language: str) -> str:
    """Where the widget asks for articles while the visitor types their first message: the
    workspace's help center ``suggest.json`` in the visitor's language, as a path on Loket's own
    host (the frame's origin, so the frame's ``connect-src 'self'`` admits it and no visitor
    token is involved: the data is public). Empty when the help center is off or does not offer
    that language."""
    from django.urls import reverse

    from loket.knowledge.models import HelpCenter

    found = (
        HelpCenter.objects.filter(workspace_id=channel.workspace_id, enabled=True)
        .select_related("workspace")
        .first()
    )
    if found is None:
        return ""
    locale = next(
        (
            code
            for code in found.offered_locales
            if code == language or code.split("-")[0] == language.split("-")[0]
        ),
        None,
    )
    if locale is None:
        return ""
    return reverse(
        "helpcenter:suggest", kwargs={"workspace": found.workspace.slug, "locale": locale}
    )


def start_session(
    channel: Channel, *, token: str = "", user: dict | None = None, language: str = "en"
) -> tuple[str, Visitor]:
    """Resume the visitor of ``token``, or start a new one; a host site's user with a valid
    HMAC becomes ``user:<id>`` (their contact and history), an invalid one is ignored (or
    refused when the channel requires identity)."""
    visitor = None
    if token:
        found = read_token(channel, token)
        if found is not None:
            visitor = Visitor(*found)
    if visitor is not None and visitor.verified:
        # A signed-in user's session resumes only with that user signed in again: on a shared
        # computer the next person must not see the previous user's chat.
        same = user and f"user:{str(user.get('id') or '')[:200]}" == visitor.key
        if not (
            same and verify_identity(channel, str(user["id"])[:200], str(user.get("hmac") or ""))
        ):
            visitor = None
    if user and user.get("id"):
        user_id = str(user["id"])[:200]
        if verify_identity(channel, user_id, str(user.get("hmac") or "")):
            profile = {
                "name": str(user.get("name") or "")[:200],
                "email": str(user.get("email") or "")[:254],
            }
            visitor = Visitor(
                f"user:{user_id}", {**(visitor.profile if visitor else {}), **profile}
            )
        elif channel.settings.get("require_identity"):
            raise WidgetError(403, "identity_required", "the user's signature is not valid")
    if channel.settings.get("require_identity") and (visitor is None or not visitor.verified):
        raise WidgetError(403, "identity_required", "this chat needs a signed-in user")
    if visitor is None:
        visitor = Visitor(new_visitor_key(), {})
    return issue_token(channel, visitor.key, visitor.profile), visitor


# Custom attributes: the host page's (Loket.setAttributes) and the pre-chat form's own fields
# end up in the contact's attributes, which agents see in the conversation's sidebar.
ATTRIBUTES_PER_CALL = 20  # keys taken from one session call; more are left out
ATTRIBUTES_PER_CONTACT = 50  # a new key is only added while the contact has fewer
ATTRIBUTE_TEXT_MAX = 500
ATTRIBUTE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
# Until the visitor has a contact (their first message or the pre-chat form), the host page's
# attributes wait in the cache this long; a session alone creates no contact.
PENDING_ATTRIBUTES_SECONDS = 24 * 3600
_SAFE_NUMBER = 2**53  # what JavaScript holds exactly


def clean_attributes(values) -> dict:
    """What may be stored of the host page's attributes: up to ``ATTRIBUTES_PER_CALL`` keys
    like ``plan`` or ``order-id`` (a letter, then letters, digits, ``_`` or ``-``; 40 at most),
    each text (cut to ``ATTRIBUTE_TEXT_MAX`` characters), a finite number or true/false.
    Anything else is left out, never an error: no attribute may keep the chat from starting."""
    if not isinstance(values, dict):
        return {}
    out: dict = {}
    for key, value in values.items():
        if len(out) >= ATTRIBUTES_PER_CALL:
            break
        if not isinstance(key, str) or not ATTRIBUTE_KEY.fullmatch(key):
            continue
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int | float):
            if math.isfinite(value) and abs(value) <= _SAFE_NUMBER:
                out[key] = value
        elif isinstance(value, str):
            out[key] = value.strip()[:ATTRIBUTE_TEXT_MAX]
    return out


def _contact_of(channel: Channel, visitor: Visitor):
    from loket.inbox.models import ContactIdentity

    identity = (
        ContactIdentity.objects.filter(channel=channel, external_id=visitor.key)
        .select_related("contact")
        .first()
    )
    return identity.contact if identity else None


def _pending_key(channel: Channel, visitor: Visitor) -> str:
    digest = hashlib.sha256(visitor.key.encode()).hexdigest()[:32]
    return f"loket:lc-attributes:{channel.pk}:{digest}"


def _store_attributes(contact, visitor: Visitor, values: dict) -> None:
    """Merge ``values`` into the contact's attributes. A verified (HMAC) session's values always
    win. An unverified session may change the attributes of a contact without a verified
    identity (the latest value wins), but on a contact that belongs to a verified user (e.g. an
    anonymous visitor an agent merged into them) it may only add keys the contact lacks: what
    the host site said about its signed-in user is never overwritten by an unsigned page."""
    from loket.inbox.models import ContactIdentity

    if not values:
        return
    keep = (
        not visitor.verified
        and ContactIdentity.objects.filter(
            contact_id=contact.pk, channel__kind="livechat", external_id__startswith="user:"
        ).exists()
    )
    contacts.update_contact(
        contact,
        actor=None,
        merge_attributes=values,
        keep_existing=keep,
        max_attributes=ATTRIBUTES_PER_CONTACT,
    )


def set_attributes(channel: Channel, visitor: Visitor, values) -> None:
    """The host page's ``Loket.setAttributes(...)``, sent with a session call: on the visitor's
    contact at once when they have one, else kept until their first message or pre-chat form
    (a page view alone creates no contact)."""
    cleaned = clean_attributes(values)
    key = _pending_key(channel, visitor)
    pending = cache.get(key) or {}
    if not cleaned and not pending:
        return
    contact = _contact_of(channel, visitor)
    if contact is None:
        for name, value in cleaned.items():
            if name in pending or len(pending) < ATTRIBUTES_PER_CONTACT:
                pending[name] = value
        cache.set(key, pending, PENDING_ATTRIBUTES_SECONDS)
        return
    if pending:
        cache.delete(key)
    _store_attributes(contact, visitor, {**pending, **cleaned})


def store_pending_attributes(channel: Channel, visitor: Visitor, contact=None) -> None:
    """Attributes the host page set before the visitor had a contact, now that they have one."""
    key = _pending_key(channel, visitor)
    pending = cache.get(key)
    if not pending:
        return
    contact = contact or _contact_of(channel, visitor)
    if contact is None:
        return
    cache.delete(key)
    _store_attributes(contact, visitor, pending)


def save_prechat(channel: Channel, visitor: Visitor, data: dict) -> tuple[str, Visitor]:
    fields = {f["name"]: f for f in prechat(channel).get("fields", [])}
    profile = dict(visitor.profile)
    for name in ("name", "email", "phone"):
        value = str(data.get(name) or "").strip()
        if value:
            profile[name] = value[:254]
    custom = data.get("fields") if isinstance(data.get("fields"), dict) else {}
    extra = {
        k: str(v).strip()[:ATTRIBUTE_TEXT_MAX]
        for k, v in custom.items()
        if k in fields and k not in ("name", "email", "phone") and v
    }
    for name, field in fields.items():
        value = profile.get(name) if name in ("name", "email", "phone") else extra.get(name)
        if field.get("required") and not value:
            raise WidgetError(400, "invalid", f"{field['label']}: " + _("Required"))
    if profile.get("email"):
        try:
            validate_email(profile["email"])
        except ValidationError:
            raise WidgetError(400, "invalid", _("Enter a valid email address.")) from None
    if extra:
        profile["fields"] = extra
    profile["prechat_done"] = True
    # On the contact now, so messages sent over a socket opened before the form carry it too.
    contact = contacts.identify(
        channel,
        visitor.key,
        name=profile.get("name", ""),
        email=profile.get("email", ""),
        phone=profile.get("phone", ""),
    )
    # The answers to the channel's own fields become the contact's attributes (by the field's
    # name), so agents see them; the host page's earlier attributes join them.
    store_pending_attributes(channel, visitor, contact)
    _store_attributes(contact, visitor, extra)
    return issue_token(channel, visitor.key, profile), Visitor(visitor.key, profile)


def post_message(
    channel: Channel,
    visitor: Visitor,
    *,
    client_id: str,
    text: str,
    page: dict | None,
    ip: str,
    user_agent: str = "",
    locale: str = "",
    choice: dict | None = None,
) -> dict:
    """Store a visitor's message through the journal; returns it as the widget shows it.
    ``choice``: ``{"id", "title"}`` of the button the visitor tapped (its title is the text)."""
    text = (text or "").strip()
    client_id = str(client_id or "").strip()[:100]
    picked = None
    if choice is not None:
        if not isinstance(choice, dict) or not isinstance(choice.get("id"), str):
            raise WidgetError(400, "invalid", "a choice needs an id")
        picked = {"id": choice["id"][:256], "title": str(choice.get("title") or "")[:256]}
        text = text or picked["title"]
    if not text or not client_id:
        raise WidgetError(400, "invalid", "a message needs text and a client_id")
    if len(text) > MAX_TEXT:
        raise WidgetError(413, "too_large", f"a message has at most {MAX_TEXT} characters")
    allow(f"lc-visitor:{channel.pk}:{visitor.key}", settings.LOKET_WIDGET_MESSAGES_PER_MINUTE, 60)
    allow(f"lc-ip:{channel.pk}:{ip}", settings.LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP, 60)
    body = json.dumps(
        {
            "visitor": visitor.key,
            "client_id": client_id,
            "text": text,
            "contact": {
                **{k: visitor.profile.get(k, "") for k in ("name", "email", "phone")},
                # The browser's language: the contact's, until they say otherwise (the bot
                # and the auto-replies answer in it).
                "locale": locale[:10],
            },
            "page": _page(page),
            "client": {"browser": browser(user_agent), "locale": locale[:20]},
            **({"choice": picked} if picked else {}),
        }
    ).encode()
    outcome = journal.record(channel, body, {"source": "widget"}, content_type="application/json")
    if outcome.bad_payload or outcome.status == "failed":
        raise WidgetError(400, "invalid", outcome.error or "the message could not be stored")
    message = (
        Message.objects.filter(
            channel=channel,
            direction=Direction.INBOUND,
            external_id=f"{visitor.key}:{client_id}",
        )
        .select_related("author_member__user")
        .first()
    )
    store_pending_attributes(channel, visitor)  # the first message created the contact
    shown = delivery.as_widget_message(message)
    # The visitor's other tabs show it too.
    delivery.push(channel, [visitor.key], {"type": "message", "message": shown})
    return shown


def check_upload(channel: Channel, name: str, content_type: str, data: bytes) -> None:
    """Size and type limits for a visitor's file, then the operator's scanner (a hook point:
    LOKET_UPLOAD_SCANNER names a function(filename, content_type, data) that raises
    UploadRejected, e.g. one that asks ClamAV)."""
    from loket.inbox.services import media

    limit = min(
        settings.LOKET_WIDGET_UPLOAD_MAX_BYTES, media.max_attachment_bytes(channel.workspace_id)
    )
    if len(data) > limit:
        raise WidgetError(
            413, "too_large", _("Files can be at most %(mb)s MB.") % {"mb": limit // (1024 * 1024)}
        )
    if not data:
        raise WidgetError(400, "invalid", _("The file is empty."))
    base_type = (content_type or "").split(";")[0].strip().lower()
    if base_type not in settings.LOKET_WIDGET_UPLOAD_TYPES:
        raise WidgetError(415, "unsupported", _("This kind of file cannot be sent here."))
    scanner = settings.LOKET_UPLOAD_SCANNER
    if scanner:
        from django.utils.module_loading import import_string

        try:
            import_string(scanner)(name, base_type, data)
        except UploadRejected as exc:
            raise WidgetError(422, "rejected", str(exc) or _("The file was refused.")) from None


class UploadRejected(Exception):
    """Raised by an upload scanner (LOKET_UPLOAD_SCANNER) for a file it refuses."""


def post_file(
    channel: Channel,
    visitor: Visitor,
    *,
    client_id: str,
    name: str,
    content_type: str,
    data: bytes,
    text: str = "",
    ip: str = "",
) -> dict:
    """A visitor's file (with optional text) as a message, through the journal like text."""
    client_id = str(client_id or "").strip()[:100]
    if not client_id:
        raise WidgetError(400, "invalid", "a file needs a client_id")
    allow(f"lc-upload:{channel.pk}:{visitor.key}", settings.LOKET_WIDGET_UPLOADS_PER_HOUR, 3600)
    allow(f"lc-ip:{channel.pk}:{ip}", settings.LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP, 60)
    check_upload(channel, name, content_type, data)
    body = json.dumps(
        {
            "visitor": visitor.key,
            "client_id": client_id,
            "text": (text or "").strip()[:MAX_TEXT],
            "contact": {k: visitor.profile.get(k, "") for k in ("name", "email", "phone")},
            "files": [
                {
                    "name": name[:200],
                    "content_type": content_type.split(";")[0].strip().lower(),
                    "content": base64.b64encode(data).decode(),
                }
            ],
        }
    ).encode()
    outcome = journal.record(channel, body, {"source": "widget"}, content_type="application/json")
    if outcome.bad_payload or outcome.status == "failed":
        raise WidgetError(400, "invalid", outcome.error or "the file could not be stored")
    message = (
        Message.objects.filter(
            channel=channel, direction=Direction.INBOUND, external_id=f"{visitor.key}:{client_id}"
        )
        .select_related("author_member__user", "channel")
        .prefetch_related("attachments")
        .first()
    )
    store_pending_attributes(channel, visitor)
    shown = delivery.as_widget_message(message)
    delivery.push(channel, [visitor.key], {"type": "message", "message": shown})
    return shown


def visitor_file(channel: Channel, visitor: Visitor, attachment_id: int):
    """An attachment of the visitor's own conversations on this channel, or None."""
    from loket.inbox.models import Attachment, ContactIdentity

    contact_id = (
        ContactIdentity.objects.filter(channel=channel, external_id=visitor.key)
        .values_list("contact_id", flat=True)
        .first()
    )
    if contact_id is None:
        return None
    return Attachment.objects.filter(
        pk=attachment_id,
        status="stored",
        message__channel=channel,
        message__conversation__contact_id=contact_id,
        message__kind="message",
    ).first()


def mark_read(channel: Channel, visitor: Visitor, up_to: int) -> int:
    """The visitor has seen the agents' replies up to ``up_to``: they become read."""
    ids = [
        m["id"]
        for m in delivery.history(channel, visitor.key)
        if m["direction"] == "out" and m["id"] <= up_to and m["status"] != DeliveryStatus.READ
    ]
    for message_id in ids:
        receive(channel, StatusUpdate(f"lc_{message_id}", DeliveryStatus.READ))
    return len(ids)


_BROWSERS = (
    ("Edge", re.compile(r"Edg/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"Firefox/(\d+)")),
    ("Chrome", re.compile(r"Chrome/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+).*Safari/")),
)
_SYSTEMS = (
    ("Android", "Android"), ("iOS", "iPhone"), ("iPadOS", "iPad"), ("Windows", "Windows"),
    ("macOS", "Mac OS X"), ("Linux", "Linux"),
)  # fmt: skip


def browser(user_agent: str) -> str:
    """A short, readable browser and system ("Firefox 133 on Windows") for agents."""
    name = next(
        (
            f"{label} {found.group(1)}"
            for label, rx in _BROWSERS
            if (found := rx.search(user_agent))
        ),
        "",
    )
    system = next((label for label, marker in _SYSTEMS if marker in user_agent), "")
    return " on ".join(part for part in (name, system) if part)[:100]


def _page(page) -> dict:
    """The page a visitor chats from, as the host page says; links only over http(s), since
    agents click them."""
    if not isinstance(page, dict):
        return {}
    out = {k: str(page.get(k) or "")[:1000] for k in ("url", "title", "referrer")}
    for key in ("url", "referrer"):
        if not out[key].lower().startswith(("http://", "https://")):
            out[key] = ""
    return out
