"""Telegram Updates (the webhook's body) as Loket's inbound items.

Ids: a Telegram message id is unique only within its chat, so every message id Loket stores is
``"<chat id>:<message id>"``. A customer's identity is their private chat's id; in a group the
sender is ``"<group chat id>:<user id>"`` (replies go to the group, never to a private chat).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.utils.translation import gettext

from loket.connectors.base import BadPayload
from loket.connectors.payload import as_dict as obj
from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundItem,
    InboundMessage,
    MessageEdit,
    Reaction,
)

# Parts of a Message that describe it rather than carry what the customer sent.
_MESSAGE_FIELDS = frozenset(
    """
    message_id message_thread_id from sender_chat sender_boost_count sender_business_bot date
    business_connection_id chat forward_origin forward_from forward_from_chat
    forward_from_message_id forward_signature forward_sender_name forward_date is_topic_message
    is_automatic_forward reply_to_message external_reply quote reply_to_story via_bot edit_date
    has_protected_content is_from_offline is_paid_post media_group_id author_signature
    paid_star_count text entities link_preview_options effect_id caption caption_entities
    show_caption_above_media has_media_spoiler reply_markup direct_messages_topic
    suggested_post_info
    """.split()  # noqa: SIM905
)
# Service messages: things that happened in a chat, not something a customer said.
_SERVICE_FIELDS = frozenset(
    """
    new_chat_members left_chat_member new_chat_title new_chat_photo delete_chat_photo
    group_chat_created supergroup_chat_created channel_chat_created
    message_auto_delete_timer_changed migrate_to_chat_id migrate_from_chat_id pinned_message
    connected_website write_access_allowed proximity_alert_triggered boost_added
    chat_background_set forum_topic_created forum_topic_edited forum_topic_closed
    forum_topic_reopened general_forum_topic_hidden general_forum_topic_unhidden
    giveaway_created giveaway_completed video_chat_scheduled video_chat_started
    video_chat_ended video_chat_participants_invited refunded_payment successful_payment
    chat_shared users_shared gift unique_gift paid_message_price_changed
    """.split()  # noqa: SIM905
)
_GROUP_TYPES = ("group", "supergroup")
# On a tapped button's message: {"chat_id", "message_id"} of the message that showed the keyboard.
TAPPED_KEY = "telegram_tapped"


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadPayload(f"'{what}' must be an integer")
    return value


def text_of(value: Any, limit: int = 255) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value)[:limit]


def timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def message_key(chat_id: int | str, message_id: int | str) -> str:
    """The id Loket stores for a Telegram message: message ids repeat across chats."""
    return f"{chat_id}:{message_id}"


def person_name(user: dict[str, Any]) -> str:
    name = " ".join(
        p for p in (text_of(user.get("first_name")), text_of(user.get("last_name"))) if p
    )
    return name or text_of(user.get("title")) or text_of(user.get("username"))


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _phone(value: str) -> str:
    """A shared contact's number in E.164 (Telegram sends it without the plus sign)."""
    digits = re.sub(r"[^\d+]", "", value or "")
    if not digits:
        return ""
    if digits.startswith("00"):
        digits = digits[2:]
    return digits if digits.startswith("+") else f"+{digits}"


def parse_update(body: bytes) -> list[InboundItem]:
    """Telegram's Update object as Loket's inbound items."""
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(update, dict) or "update_id" not in update:
        raise BadPayload("a Telegram Update is a JSON object with an update_id")
    if isinstance(update.get("message"), dict):
        return [_message(update["message"])]
    if isinstance(update.get("edited_message"), dict):
        return [_edit(update["edited_message"])]
    if isinstance(update.get("message_reaction"), dict):
        return [_reaction(update["message_reaction"])]
    if isinstance(update.get("callback_query"), dict):
        return [_callback(update["callback_query"])]
    kinds = sorted(k for k in update if k != "update_id")
    return [Ignored(f"Telegram {kinds[0] if kinds else 'empty'} update")]


def _contact(chat: dict[str, Any], sender: dict[str, Any]) -> InboundContact:
    chat_id = _id(chat.get("id"), "chat.id")
    if chat.get("type") in _GROUP_TYPES:
        external_id = f"{chat_id}:{_id(sender.get('id'), 'from.id')}"
    else:
        external_id = str(chat_id)
    return InboundContact(
        external_id=external_id,
        name=person_name(sender) or person_name(chat),
        locale=text_of(sender.get("language_code"), 10),
    )


def _sender(message: dict[str, Any]) -> dict[str, Any]:
    # An anonymous group admin or a linked channel speaks as a chat ("sender_chat"); "from" is
    # then a placeholder bot user, kept only for old clients.
    return obj(message.get("sender_chat")) or obj(message.get("from"))


def _provider(chat: dict[str, Any], sender: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if sender.get("username"):
        extra["username"] = text_of(sender["username"], 64)
    if chat.get("type") in _GROUP_TYPES:
        extra["chat"] = {
            "id": chat.get("id"),
            "type": chat.get("type"),
            "title": text_of(chat.get("title"), 255),
        }
        if sender.get("id") is not None:
            extra["user_id"] = sender.get("id")
    return extra


def _message(message: dict[str, Any]) -> InboundItem:
    chat = obj(message.get("chat"))
    if chat.get("type") == "channel":
        return Ignored("Telegram channel post")
    sender = _sender(message)
    if sender.get("is_bot"):
        return Ignored("a message from another bot")
    if _SERVICE_FIELDS.intersection(message):
        return Ignored("Telegram service message")
    chat_id = _id(chat.get("id"), "message.chat.id")
    message_id = _id(message.get("message_id"), "message.message_id")
    contact = _contact(chat, sender)
    text, attachments, data = _content(message, message_id)
    provider = _provider(chat, sender)
    if provider:
        data["provider"] = provider
    shared = data.get("contacts")
    if shared and message.get("contact", {}).get("user_id") == sender.get("id"):
        # The customer shared their own number (a "share my phone number" button).
        contact = InboundContact(
            external_id=contact.external_id,
            name=contact.name,
            phone=_phone(text_of(message["contact"].get("phone_number"), 40)),
            locale=contact.locale,
        )
    reply = obj(message.get("reply_to_message"))
    return InboundMessage(
        external_id=message_key(chat_id, message_id),
        contact=contact,
        text=text,
        sent_at=timestamp(message.get("date")),
        attachments=tuple(attachments),
        data=data,
        reply_to=message_key(chat_id, reply["message_id"])
        if isinstance(reply.get("message_id"), int)
        else "",
    )


def _content(
    message: dict[str, Any], message_id: int
) -> tuple[str, list[InboundAttachment], dict[str, Any]]:
    text = text_of(message.get("text"), 65536) or text_of(message.get("caption"), 65536)
    data: dict[str, Any] = {}
    files: list[InboundAttachment] = []

    def attach(item: Any, default_name: str, default_type: str) -> None:
        item = obj(item)
        file_id = text_of(item.get("file_id"))
        if not file_id:
            raise BadPayload("a Telegram file without a file_id")
        files.append(
            InboundAttachment(
                filename=text_of(item.get("file_name")) or default_name,
                content_type=text_of(item.get("mime_type"), 127) or default_type,
                media_ref=file_id,
            )
        )

    if isinstance(message.get("photo"), list) and message["photo"]:
        sizes = [obj(size) for size in message["photo"]]
        largest = max(
            sizes,
            key=lambda s: (
                (s.get("width") or 0) * (s.get("height") or 0),
                s.get("file_size") or 0,
            ),
        )
        attach(largest, f"photo_{message_id}.jpg", "image/jpeg")
    elif isinstance(message.get("sticker"), dict):
        sticker = message["sticker"]
        if sticker.get("is_animated"):
            name, kind = f"sticker_{message_id}.tgs", "application/x-tgsticker"
        elif sticker.get("is_video"):
            name, kind = f"sticker_{message_id}.webm", "video/webm"
        else:
            name, kind = f"sticker_{message_id}.webp", "image/webp"
        attach(sticker, name, kind)
        data["sticker"] = True
        text = text_of(sticker.get("emoji"), 32) or gettext("Sticker")
    elif isinstance(message.get("animation"), dict):  # also sent as "document": once
        attach(message["animation"], f"animation_{message_id}.mp4", "video/mp4")
    elif isinstance(message.get("voice"), dict):
        attach(message["voice"], f"voice_{message_id}.ogg", "audio/ogg")
    elif isinstance(message.get("video_note"), dict):
        attach(message["video_note"], f"video_note_{message_id}.mp4", "video/mp4")
    elif isinstance(message.get("video"), dict):
        attach(message["video"], f"video_{message_id}.mp4", "video/mp4")
    elif isinstance(message.get("audio"), dict):
        attach(message["audio"], f"audio_{message_id}.mp3", "audio/mpeg")
    elif isinstance(message.get("document"), dict):
        attach(message["document"], f"document_{message_id}", "application/octet-stream")
    elif isinstance(message.get("venue"), dict) or isinstance(message.get("location"), dict):
        venue = obj(message.get("venue"))
        where = obj(venue.get("location")) or obj(message.get("location"))
        latitude, longitude = where.get("latitude"), where.get("longitude")
        if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
            raise BadPayload("a Telegram location needs a latitude and a longitude")
        name, address = text_of(venue.get("title")), text_of(venue.get("address"), 500)
        data["location"] = {
            "latitude": latitude,
            "longitude": longitude,
            "name": name,
            "address": address,
            "url": "https://www.openstreetmap.org/?mlat={0}&mlon={1}#map=17/{0}/{1}".format(
                _number(latitude), _number(longitude)
            ),
        }
        place = ", ".join(p for p in (name, address) if p)
        coordinates = f"{_number(latitude)}, {_number(longitude)}"
        text = gettext("Location: %(place)s") % {
            "place": f"{place} ({coordinates})" if place else coordinates
        }
    elif isinstance(message.get("contact"), dict):
        card = message["contact"]
        name = person_name(card)
        phone = _phone(text_of(card.get("phone_number"), 40))
        data["contacts"] = [{"name": name, "phones": [phone] if phone else [], "emails": []}]
        text = gettext("Contact: %(card)s") % {"card": ", ".join(p for p in (name, phone) if p)}
    elif not text:
        kind = next((k for k in message if k not in _MESSAGE_FIELDS), "unknown")[:64]
        data["unsupported"] = kind
        text = gettext("[A Telegram message Loket cannot show: %(kind)s]") % {"kind": kind}
    return text, files, data


def _edit(message: dict[str, Any]) -> InboundItem:
    chat = obj(message.get("chat"))
    if chat.get("type") == "channel":
        return Ignored("Telegram channel post edited")
    text = text_of(message.get("text"), 65536) or text_of(message.get("caption"), 65536)
    if not text:
        # A live location moving, or media replaced without a caption: no new text.
        return Ignored("Telegram edit without text")
    return MessageEdit(
        target_external_id=message_key(
            _id(chat.get("id"), "edited_message.chat.id"),
            _id(message.get("message_id"), "edited_message.message_id"),
        ),
        text=text,
        at=timestamp(message.get("edit_date")) or timestamp(message.get("date")),
    )


def _reaction(update: dict[str, Any]) -> InboundItem:
    chat = obj(update.get("chat"))
    sender = obj(update.get("user")) or obj(update.get("actor_chat"))
    if not sender:
        return Ignored("anonymous Telegram reaction")
    emoji = ""
    for reaction in update.get("new_reaction") or []:
        reaction = obj(reaction)
        if reaction.get("type") == "emoji":
            emoji += text_of(reaction.get("emoji"), 16)
        elif reaction.get("type") in ("custom_emoji", "paid"):
            emoji += "\u2b50"  # a custom or paid (star) reaction has no emoji of its own
    chat_id = _id(chat.get("id"), "message_reaction.chat.id")
    return Reaction(
        target_external_id=message_key(
            chat_id, _id(update.get("message_id"), "message_reaction.message_id")
        ),
        contact=_contact(chat, sender),
        emoji=emoji,
        at=timestamp(update.get("date")),
    )


def _callback(query: dict[str, Any]) -> InboundItem:
    message = obj(query.get("message"))
    chat = obj(message.get("chat"))
    sender = obj(query.get("from"))
    if not chat or not sender:
        return Ignored("Telegram callback query from an inline message")
    choice_id = text_of(query.get("data"), 64)
    if not choice_id:
        return Ignored("Telegram callback query without data (a game)")
    title = ""
    keyboard = obj(message.get("reply_markup")).get("inline_keyboard") or []
    for row in keyboard if isinstance(keyboard, list) else []:
        for button in row if isinstance(row, list) else []:
            button = obj(button)
            if button.get("callback_data") == choice_id:
                title = text_of(button.get("text"), 255)
    chat_id = _id(chat.get("id"), "callback_query.message.chat.id")
    data: dict[str, Any] = {"choice": {"id": choice_id, "title": title or choice_id}}
    provider = _provider(chat, sender)
    if provider:
        data["provider"] = provider
    message_id = message.get("message_id")
    if isinstance(message_id, int):
        # The message whose keyboard was tapped: a job takes the buttons away (tasks.py).
        data[TAPPED_KEY] = {"chat_id": chat_id, "message_id": message_id}
    return InboundMessage(
        external_id=f"{chat_id}:callback:{text_of(query.get('id'), 64)}",
        contact=_contact(chat, sender),
        text=title or choice_id,
        data=data,
        reply_to=message_key(chat_id, message_id) if isinstance(message_id, int) else "",
    )


# -- media ------------------------------------------------------------------------------------


def callback_answer(body: bytes) -> dict[str, Any] | None:
    """The answerCallbackQuery a button press needs (sent as the webhook's answer), if any."""
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    query = obj(obj(update).get("callback_query"))
    if not isinstance(query.get("id"), str):
        return None
    return {"method": "answerCallbackQuery", "callback_query_id": query["id"]}
