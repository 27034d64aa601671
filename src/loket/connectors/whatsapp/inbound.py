"""WhatsApp Cloud API webhook notifications → Loket's normalised items.

One notification (``object: whatsapp_business_account``) can carry several entries, each with
several changes; a ``messages`` change has ``contacts`` (profile names by ``wa_id``),
``messages`` and ``statuses``. Every message becomes an item: kinds Loket cannot show become a
readable placeholder with ``data["unsupported"]``, never nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loket.connectors.base import BadPayload
from loket.connectors.meta import graph
from loket.connectors.payload import as_dict as _dict
from loket.connectors.payload import as_list as _list
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    Reaction,
    StatusUpdate,
)
from loket.inbox.models import Channel, ContactIdentity, DeliveryStatus, Direction, Message

OBJECT = "whatsapp_business_account"
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
# Where the ids of a multi-part reply's later parts are kept (see outbound.py).
PARTS_KEY = "whatsapp_parts"
PART_LOOKUP_DAYS = 30


def _str(value: Any, limit: int = 255) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()[:limit]


def _time(value: Any) -> dt.datetime | None:
    try:
        seconds = int(str(value))
    except (TypeError, ValueError):
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def error_words(error: dict[str, Any]) -> str:
    """A WhatsApp error object (``{code, title, message, error_data: {details}}``) in plain
    words, the same words as an error answer of the Graph API."""
    try:
        code = int(error.get("code"))
    except (TypeError, ValueError):
        code = None
    title = _str(error.get("title") or error.get("message"), 300)
    details = _str(_dict(error.get("error_data")).get("details"), 300)
    if details and details != title:
        title = f"{title}: {details}" if title else details
    return graph.GraphError(0, code, None, title or _("unknown error"), False).plain()


def parse(channel: Channel, body: bytes) -> list[InboundItem]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadPayload("body must be a JSON object")
    kind = payload.get("object")
    if kind != OBJECT:
        return [Ignored(f"not a WhatsApp Business Account notification (object {_str(kind)!r})")]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise BadPayload("'entry' must be a list")
    own = _str(channel.settings.get("phone_number_id"))
    items: list[InboundItem] = []
    for entry in entries:
        for change in _list(_dict(entry).get("changes")):
            items.extend(_change(channel, own, _dict(change)))
    return items or [Ignored("the notification has no changes")]


def _change(channel: Channel, own: str, change: dict[str, Any]) -> list[InboundItem]:
    field = _str(change.get("field"), 80)
    if field != "messages":
        return [Ignored(f"the {field!r} field is not handled")]
    value = _dict(change.get("value"))
    number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    if not number_id or number_id != own:
        return [Ignored(f"for phone number id {number_id or '(none)'}, not this channel's ({own})")]
    names = {}
    for contact in _list(value.get("contacts")):
        contact = _dict(contact)
        profile = _dict(contact.get("profile"))
        # A user with a WhatsApp username may come without their number: only the
        # business-scoped user id (BSUID, "user_id").
        name = _str(profile.get("name"), 200) or _str(profile.get("username"), 200)
        for key in ("wa_id", "user_id"):
            if _str(contact.get(key), 160):
                names[_str(contact.get(key), 160)] = name
    items: list[InboundItem] = []
    for message in _list(value.get("messages")):
        items.append(_message(_dict(message), names))
    statuses = [_dict(status) for status in _list(value.get("statuses"))]
    known = _sent_ids(channel, [_str(status.get("id")) for status in statuses])
    for status in statuses:
        items.append(_status(channel, status, known))
    for error in _list(value.get("errors")):
        items.append(Ignored(f"WhatsApp reported an error: {error_words(_dict(error))}"))
    return items or [Ignored("a messages change with no messages or statuses")]


def _contact(sender: str, names: dict[str, str]) -> InboundContact:
    """The sender by their WhatsApp id (their number, in digits) or, for a user whose number
    WhatsApp withholds, their business-scoped user id (e.g. ``NL.1502576394655843``)."""
    phone = f"+{sender}" if sender.isdigit() else ""
    return InboundContact(external_id=sender, name=names.get(sender, ""), phone=phone)


def _placeholder(kind: str, error: str = "") -> str:
    text = _("[A WhatsApp message of a kind Loket cannot show: %(kind)s]") % {"kind": kind}
    return f"{text}\n{error}" if error else text


def _message(message: dict[str, Any], names: dict[str, str]) -> InboundItem:
    wamid = _str(message.get("id"))
    user_id = _str(message.get("from_user_id"), 160)
    sender = _str(message.get("from"), 64) or user_id
    if not wamid or not sender:
        return Ignored("a message without an id or a sender")
    kind = _str(message.get("type"), 40) or "unknown"
    contact = _contact(sender, names)
    at = _time(message.get("timestamp"))
    if kind == "revoke":  # the customer deleted a message (WhatsApp Business app numbers)
        target = _str(_dict(message.get("revoke")).get("original_message_id"))
        if not target:
            return Ignored("a deletion without the message it deletes")
        return MessageDeletion(target, at)
    if kind == "edit":  # the customer edited a message (WhatsApp Business app numbers)
        edit = _dict(message.get("edit"))
        target = _str(edit.get("original_message_id"))
        changed = _dict(edit.get("message"))
        content = _dict(changed.get(_str(changed.get("type"), 40)))
        text = _str(content.get("body") or content.get("caption"), 65536)
        if not target or not text:
            return Ignored("an edit without the message it edits or its new text")
        return MessageEdit(target, text, at)
    if kind == "reaction":
        reaction = _dict(message.get("reaction"))
        target = _str(reaction.get("message_id"))
        if not target:
            return Ignored("a reaction without the message it reacts to")
        return Reaction(target, contact, _str(reaction.get("emoji"), 32), at)

    context = _dict(message.get("context"))
    provider: dict[str, Any] = {}
    if user_id and user_id != sender:
        provider["user_id"] = user_id
    if context.get("forwarded") or context.get("frequently_forwarded"):
        provider["forwarded"] = "frequently" if context.get("frequently_forwarded") else True
    product = _dict(context.get("referred_product"))
    if product:
        provider["referred_product"] = {
            "catalog_id": _str(product.get("catalog_id")),
            "product_retailer_id": _str(product.get("product_retailer_id")),
        }
    referral = _dict(message.get("referral"))
    if referral:  # a click-to-WhatsApp ad or post
        provider["referral"] = {
            key: _str(referral.get(key), 500)
            for key in ("source_url", "source_type", "source_id", "headline", "body")
            if referral.get(key)
        }

    text, data, attachments = _content(kind, message, wamid)
    if provider:
        data["provider"] = {**provider, **_dict(data.get("provider"))}
    return InboundMessage(
        external_id=wamid,
        contact=contact,
        text=text,
        sent_at=at,
        attachments=attachments,
        data=data,
        reply_to=_str(context.get("id")),
    )


def _content(
    kind: str, message: dict[str, Any], wamid: str
) -> tuple[str, dict[str, Any], tuple[InboundAttachment, ...]]:
    """(text, data, attachments) of one message by its type."""
    errors = [_dict(e) for e in _list(message.get("errors"))]
    body = _dict(message.get(kind))
    if kind == "text" and not errors:
        return _str(body.get("body"), 65536), {}, ()
    if kind in MEDIA_KINDS and body.get("id") and not errors:
        return _media(kind, body, wamid)
    if kind == "location" and not errors:
        return _location(body)
    if kind == "contacts" and not errors:
        return _cards(_list(message.get("contacts")))
    if kind == "interactive" and not errors:
        found = _interactive(body)
        if found is not None:
            return found
    if kind == "button" and not errors:  # a quick-reply button of a template
        title = _str(body.get("text"), 1000)
        choice = {"id": _str(body.get("payload"), 1000), "title": title}
        return title, {"choice": choice}, ()
    if kind == "system":
        text = _str(body.get("body"), 2000) or _("[WhatsApp system message]")
        details = {
            key: _str(body.get(key))
            for key in ("type", "wa_id", "new_wa_id", "customer", "identity")
            if body.get(key)
        }
        return text, {"provider": {"system": details}}, ()
    data: dict[str, Any] = {"unsupported": kind}
    error = ""
    if errors:
        error = error_words(errors[0])
        data["provider"] = {
            "error": {"code": errors[0].get("code"), "title": _str(errors[0].get("title"))}
        }
    return _placeholder(kind, error), data, ()


def _media(kind: str, body: dict[str, Any], wamid: str):
    content_type = _str(body.get("mime_type"), 127) or "application/octet-stream"
    # "audio/ogg; codecs=opus": the parameters are not part of the type.
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    data: dict[str, Any] = {}
    stem = kind
    if kind == "audio" and body.get("voice"):
        data["voice"] = True
        stem = "voice-message"
    if kind == "sticker":
        data["sticker"] = True
        if body.get("animated"):
            data["provider"] = {"animated": True}
    if extension == ".oga":
        extension = ".ogg"
    filename = _str(body.get("filename")) or f"{stem}{extension}"
    attachment = InboundAttachment(
        filename=filename, content_type=content_type, media_ref=_str(body.get("id"))
    )
    return _str(body.get("caption"), 65536), data, (attachment,)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _location(body: dict[str, Any]):
    latitude, longitude = _number(body.get("latitude")), _number(body.get("longitude"))
    location = {
        "latitude": latitude,
        "longitude": longitude,
        "name": _str(body.get("name"), 500),
        "address": _str(body.get("address"), 1000),
        "url": _str(body.get("url"), 2000),
    }
    lines = [_("Location")]
    place = ", ".join(part for part in (location["name"], location["address"]) if part)
    if place:
        lines.append(place)
    if latitude is not None and longitude is not None:
        lines.append(
            f"https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}"
            f"#map=17/{latitude}/{longitude}"
        )
    if location["url"]:
        lines.append(location["url"])
    return "\n".join(lines), {"location": location}, ()


def _cards(cards: list[Any]):
    shared = []
    for card in cards:
        card = _dict(card)
        name = _dict(card.get("name"))
        full = _str(name.get("formatted_name"), 200) or " ".join(
            _str(name.get(part), 100) for part in ("first_name", "last_name") if name.get(part)
        )
        phones = [_str(_dict(p).get("phone"), 40) for p in _list(card.get("phones"))]
        emails = [_str(_dict(e).get("email"), 254) for e in _list(card.get("emails"))]
        entry = {
            "name": full,
            "phones": [p for p in phones if p],
            "emails": [e for e in emails if e],
        }
        organisation = _str(_dict(card.get("org")).get("company"), 200)
        if organisation:
            entry["organisation"] = organisation
        shared.append(entry)
    lines = [_("Shared contact") if len(shared) == 1 else _("Shared contacts")]
    for entry in shared:
        reach = ", ".join(entry["phones"] + entry["emails"])
        lines.append(f"{entry['name'] or '?'}" + (f": {reach}" if reach else ""))
    return "\n".join(lines), {"contacts": shared}, ()


def _interactive(body: dict[str, Any]):
    kind = _str(body.get("type"), 40)
    if kind in ("button_reply", "list_reply"):
        reply = _dict(body.get(kind))
        choice = {"id": _str(reply.get("id"), 256), "title": _str(reply.get("title"), 256)}
        if reply.get("description"):
            choice["description"] = _str(reply.get("description"), 500)
        return choice["title"], {"choice": choice}, ()
    if kind == "nfm_reply":  # a WhatsApp Flow's answers
        reply = _dict(body.get("nfm_reply"))
        text = _str(reply.get("body"), 2000) or _("Form answers")
        answers = reply.get("response_json")
        return text, {"provider": {"flow_response": _str(answers, 4000)}}, ()
    return None


def _sent_ids(channel: Channel, wamids: list[str]) -> set[str]:
    """Which of these ids are replies Loket sent (one query for a notification's statuses)."""
    wamids = [wamid for wamid in wamids if wamid]
    if not wamids:
        return set()
    return set(
        Message.objects.filter(
            channel=channel, direction=Direction.OUTBOUND, external_id__in=wamids
        ).values_list("external_id", flat=True)
    )


def _status(channel: Channel, status: dict[str, Any], known: set[str]) -> InboundItem:
    wamid = _str(status.get("id"))
    state = _str(status.get("status"), 40)
    if not wamid:
        return Ignored("a status without a message id")
    if state not in STATUSES:
        return Ignored(f"the {state!r} status is not tracked")
    error = ""
    if state == "failed":
        errors = _list(status.get("errors"))
        error = (
            error_words(_dict(errors[0]))
            if errors
            else _("WhatsApp could not deliver the message.")
        )
    update = StatusUpdate(wamid, STATUSES[state], error, _time(status.get("timestamp")))
    recipients = [
        _str(status.get(key), 160)
        for key in ("recipient_id", "recipient_user_id")
        if _str(status.get(key), 160)
    ]
    if update.external_id in known:
        return update  # the plain case: a reply Loket sent
    return _for_part(channel, update, recipients)


def _for_part(channel: Channel, update: StatusUpdate, recipients: list[str]) -> InboundItem:
    """The status as the core applies it. Besides the plain case (the id of a reply Loket
    sent):

    - a reply sent as several WhatsApp messages (text and files) has the first one's id; the
      others' statuses are not the reply's, except a failure, reported on the reply;
    - a status that overtakes the send (Meta reports before Loket recorded the id) goes to the
      core, which retries it until the id is recorded;
    - a status of a message Loket did not send (another app on the same number, a send that
      timed out and was sent again) is acknowledged and ignored, not retried for hours.
    """
    outbound = Message.objects.filter(channel=channel, direction=Direction.OUTBOUND)
    if recipients and _sending_to(channel, recipients):
        return update  # perhaps this send's: the core retries it once the id is recorded
    # Checked again: the send may have been recorded since the notification's first look.
    if outbound.filter(external_id=update.external_id).exists():
        return update
    if recipients and update.status != DeliveryStatus.FAILED:
        # Only a failure of a later part is reported on the reply; anything else is ignored
        # whoever sent it, so the parts are not searched.
        return Ignored(f"the {update.status} status of a message Loket did not send (or a part)")
    since = timezone.now() - dt.timedelta(days=PART_LOOKUP_DAYS)
    owner = (
        outbound.filter(
            Q(created_at__gte=since),
            **{f"data__{PARTS_KEY}__icontains": f'"{update.external_id}"'},
        )
        .exclude(external_id=None)
        .values_list("external_id", flat=True)
        .first()
    )
    if owner is None:
        if not recipients:
            return update  # cannot tell: the core retries it
        return Ignored(f"the {update.status} status of a message Loket did not send")
    if update.status == DeliveryStatus.FAILED:
        error = _("A part of the message was not delivered: %(error)s") % {"error": update.error}
        return StatusUpdate(owner, update.status, error, update.at)
    return Ignored(f"the {update.status} status of a later part of message {owner}")


def _sending_to(channel: Channel, recipients: list[str]) -> bool:
    """Whether a reply to this customer (by number or business-scoped user id) is queued or
    being sent."""
    contact = ContactIdentity.objects.filter(channel=channel, external_id__in=recipients).values(
        "contact_id"
    )
    return Message.objects.filter(
        channel=channel,
        direction=Direction.OUTBOUND,
        status__in=(DeliveryStatus.QUEUED, DeliveryStatus.SENDING),
        conversation__contact_id__in=contact,
    ).exists()
