"""Keeping a chat going when the visitor has left: their presence (open widgets), and agents'
replies emailed to a visitor who is gone, from the channel's continuity email channel.

The email's subject carries the conversation's ``[#number]``, and the visitor's address is the
conversation contact's, so their answer to it threads back into the chat conversation (email
threading's participant-checked subject reference, loket.inbox.services.threads)."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache

from loket.inbox.models import Channel, Message

log = logging.getLogger(__name__)

PRESENCE_SECONDS = 90  # a widget pings every 25 s; three missed pings and the visitor is gone


def _presence_key(channel_id: int, visitor_key: str) -> str:
    from loket.connectors.livechat.connector import visitor_group

    return f"loket:lc-present:{visitor_group(channel_id, visitor_key)}"


def seen(channel_id: int, visitor_key: str) -> None:
    """A widget of this visitor is open (called on connect and every frame)."""
    cache.set(_presence_key(channel_id, visitor_key), 1, PRESENCE_SECONDS)


def present(channel_id: int, visitor_keys: list[str]) -> bool:
    return any(cache.get(_presence_key(channel_id, key)) for key in visitor_keys)


def email_channel(channel: Channel) -> Channel | None:
    """The channel's continuity email channel, when it is an active email channel of the same
    workspace."""
    value = channel.settings.get("continuity_email_channel") or ""
    if not value:
        return None
    try:
        key = uuid.UUID(value)
    except ValueError:
        return None
    return Channel.objects.filter(
        uuid=key, workspace_id=channel.workspace_id, kind="email", is_active=True
    ).first()


def email_if_gone(channel: Channel, message: Message) -> None:
    """Queue the reply as an email when no widget of the visitor is open and we know their
    address; in the send task's transaction, so it goes out once with the reply."""
    from loket.connectors.livechat import delivery, tasks

    contact = message.conversation.contact
    if not contact.email or email_channel(channel) is None:
        return
    if present(channel.pk, delivery.visitor_keys(channel, contact.pk)):
        return
    tasks.email_reply.enqueue(message.pk)


def send_email_reply(message_id: int) -> str:
    """Send one chat reply by email (a background task); returns the email's Message-ID."""
    from loket.connectors.email import smtp
    from loket.connectors.registry import get_connector

    message = (
        Message.objects.select_related("conversation__contact", "channel", "author_member__user")
        .filter(pk=message_id)
        .first()
    )
    if message is None or (message.data or {}).get("continuity_email"):
        return ""
    mailbox = email_channel(message.channel)
    if mailbox is None:
        return ""
    connector = get_connector("email")
    composed, recipients, message_id_header = connector.compose(mailbox, message)
    smtp.send(
        connector.smtp_settings(mailbox),
        composed,
        envelope_from=mailbox.settings["address"],
        recipients=recipients,
    )
    data = {**(message.data or {}), "continuity_email": message_id_header}
    Message.objects.filter(pk=message.pk).update(data=data)
    return message_id_header
