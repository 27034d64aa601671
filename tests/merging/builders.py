"""Conversations and contacts built through the real ingest, reply and change services."""

from __future__ import annotations

from loket.inbox.models import Conversation, ConversationStatus, Message, MessageKind
from loket.inbox.services import outbound
from loket.inbox.services.conversations import update_conversation
from tests import factories


def conversation_of(result) -> Conversation:
    return Conversation.objects.get(pk=result.conversation_id)


def second_conversation(channel, contact_id: str = "c-1", text: str = "Another question"):
    """A new conversation of a contact who already has one: the first is closed meanwhile
    (ingest never continues a closed one) and then reopened by an agent."""
    first = Conversation.objects.filter(
        channel=channel, contact__identities__external_id=contact_id
    ).latest("pk")
    update_conversation(first, actor=None, status=ConversationStatus.CLOSED)
    second = conversation_of(factories.inbound(channel, text, contact_id=contact_id))
    update_conversation(first, actor=None, status=ConversationStatus.OPEN)
    first.refresh_from_db()
    return second


def message_ids(conversation: Conversation, *kinds: str) -> list[int]:
    messages = Message.objects.filter(conversation=conversation)
    if kinds:
        messages = messages.filter(kind__in=kinds)
    return sorted(messages.values_list("pk", flat=True))


def written_ids(conversation: Conversation) -> list[int]:
    """What the customer and the agents wrote (not the activity lines)."""
    return message_ids(conversation, MessageKind.MESSAGE, MessageKind.NOTE)


def activities(conversation: Conversation) -> list[dict]:
    return [
        m.data
        for m in Message.objects.filter(
            conversation=conversation, kind=MessageKind.ACTIVITY
        ).order_by("pk")
    ]


def reply(conversation: Conversation, author, text: str = "We are on it"):
    return outbound.reply(conversation, author=author, text=text)


def note(conversation: Conversation, author, text: str):
    return outbound.reply(conversation, author=author, text=text, kind=MessageKind.NOTE)


TIMESTAMPS = (
    "last_message_at",
    "last_inbound_at",
    "last_outbound_at",
    "waiting_since",
    "first_response_at",
)
SNAPSHOT = ("status", "resolved_at", "snoozed_until", "merged_into_id", *TIMESTAMPS)


def snapshot(conversation: Conversation) -> dict:
    conversation = Conversation.objects.get(pk=conversation.pk)
    return {name: getattr(conversation, name) for name in SNAPSHOT}
