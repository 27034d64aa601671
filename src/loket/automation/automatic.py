"""Automatic inbound messages: the one check every automatic answer asks before it speaks.

A message a machine sent (an out-of-office, a bounce, a mailing, a platform's own notice) is
stored and shown like any other, but nothing in Loket answers it by itself: not the workspace's
auto-replies (``loket.automation.autoreplies``), not a rule's customer-visible action (send a
canned reply, start a bot flow: ``loket.automation.rules``), not a flow bot
(``loket.bots.engine``). Two robots answering each other is how mail loops start. A person may
still answer, and a macro an agent runs is a person answering.

The markers, set by the connectors when a message is stored:

- ``data["auto_submitted"]`` (email, ``loket.connectors.email.loops.auto_reason``: RFC 3834
  Auto-Submitted, Precedence bulk/junk/list, X-Autoreply and friends,
  X-Auto-Response-Suppress, mailing-list headers, machine senders, out-of-office subjects,
  bounces), with the signal in ``data["email"]["auto_reason"]``;
- ``data["provider"]["system"]`` (WhatsApp system messages: a customer changed their number,
  their identity key changed), which WhatsApp sends, not the customer.

Other channels drop machine traffic before it is stored (Messenger echoes, Telegram bots and
service messages), so there is nothing for them to mark.
"""

from __future__ import annotations

from loket.inbox.models import Direction, Message, MessageKind

__all__ = ["answered_message", "automatic_reason", "first_from_a_person", "is_automatic"]

# Earlier messages looked at by ``first_from_a_person``: more than this is no new conversation.
_FIRST_WINDOW = 20


def automatic_reason(message: Message | None) -> str:
    """Why ``message`` was sent by a machine (e.g. "Auto-Submitted: auto-replied"), or "" when
    a person sent it (or there is no message)."""
    if message is None:
        return ""
    data = message.data or {}
    if data.get("auto_submitted"):
        email = data.get("email") if isinstance(data.get("email"), dict) else {}
        return str(email.get("auto_reason") or "auto-submitted")
    provider = data.get("provider")
    if isinstance(provider, dict) and provider.get("system"):
        return "WhatsApp system message"
    return ""


def is_automatic(message: Message | None) -> bool:
    """Whether ``message`` was sent by a machine: nothing answers it automatically."""
    return bool(automatic_reason(message))


def answered_message(conversation_id: int, message_id: int | None = None) -> Message | None:
    """The message an automatic reply made now would answer: ``message_id`` (the message that
    triggered it) when given, else the conversation's latest message either way (a reminder
    after the team's own reply answers that reply, not an older out-of-office)."""
    found = Message.objects.filter(conversation_id=conversation_id, kind=MessageKind.MESSAGE)
    if message_id is not None:
        return found.filter(pk=message_id).only("id", "data").first()
    return found.order_by("-created_at", "-pk").only("id", "data").first()


def first_from_a_person(message: Message) -> bool:
    """Whether ``message`` is the first in its conversation a person wrote: machine mail before
    it (a mailing, an out-of-office that opened the conversation) does not count, so the
    greeting and a new-conversation bot go to the person's first message."""
    earlier = list(
        Message.objects.filter(
            conversation_id=message.conversation_id,
            direction=Direction.INBOUND,
            kind=MessageKind.MESSAGE,
            pk__lt=message.pk,
        ).only("id", "data")[:_FIRST_WINDOW]
    )
    return len(earlier) < _FIRST_WINDOW and all(is_automatic(m) for m in earlier)
