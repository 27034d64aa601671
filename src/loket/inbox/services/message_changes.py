"""What a customer does to messages already stored: react to one, edit or delete their own.

Each change updates the target message's ``data`` in one conditional statement and announces
``message.updated`` after commit, so the open timeline redraws that message:

- ``data["reactions"]``: ``{"<sender id>": "👍"}``, one reaction per person (WhatsApp and
  Messenger allow one; a new one replaces it, an empty one removes it)
- ``data["edited"]``: ``{"at": iso, "previous": [earlier texts, oldest first]}``
- ``data["deleted_at"]``: iso; the text stays for the agent, marked as deleted by the customer
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from loket import events
from loket.events import Actor
from loket.inbox.items import MessageDeletion, MessageEdit, Reaction
from loket.inbox.models import AuthorType, Channel, Direction, Message

MAX_EDITS_KEPT = 20


def _target(channel: Channel, external_id: str, *, direction: str | None = None):
    """The message with this provider id on the channel, locked; customers react to our
    messages as often as to their own."""
    if not external_id:
        return None
    found = Message.objects.select_for_update().filter(channel=channel, external_id=external_id)
    if direction:
        found = found.filter(direction=direction)
    # An inbound and an outbound message may share an id (separate namespaces): prefer theirs.
    return found.order_by("direction").first()


def _announce(message: Message, changes: dict, actor: Actor) -> None:
    events.emit(
        events.MessageUpdated(
            message.workspace_id,
            actor,
            conversation_id=message.conversation_id,
            message_id=message.pk,
            changes=changes,
        )
    )


def apply_reaction(channel: Channel, reaction: Reaction):
    from loket.inbox.services.ingest import ReceiveResult

    with transaction.atomic():
        message = _target(channel, reaction.target_external_id)
        if message is None:
            return ReceiveResult("target_unknown")
        reactions = dict((message.data or {}).get("reactions") or {})
        who = reaction.contact.external_id
        emoji = (reaction.emoji or "")[:32]
        if reactions.get(who, "") == emoji:
            return ReceiveResult("duplicate", message.pk, message.conversation_id)
        if emoji:
            reactions[who] = emoji
        else:
            reactions.pop(who, None)
        message.data = {**(message.data or {}), "reactions": reactions}
        message.save(update_fields=["data"])
        _announce(message, {"reactions": reactions}, Actor(AuthorType.CONTACT))
    return ReceiveResult("updated", message.pk, message.conversation_id)


def apply_edit(channel: Channel, edit: MessageEdit):
    from loket.inbox.services.ingest import ReceiveResult

    with transaction.atomic():
        message = _target(channel, edit.target_external_id, direction=Direction.INBOUND)
        if message is None:
            return ReceiveResult("target_unknown")
        if message.text == edit.text:
            return ReceiveResult("duplicate", message.pk, message.conversation_id)
        data = dict(message.data or {})
        previous = [*((data.get("edited") or {}).get("previous") or []), message.text]
        at = (edit.at or timezone.now()).isoformat()
        data["edited"] = {"at": at, "previous": previous[-MAX_EDITS_KEPT:]}
        message.text = edit.text
        message.data = data
        message.save(update_fields=["text", "data"])
        _announce(message, {"edited": at}, Actor(AuthorType.CONTACT, message.author_contact_id))
    return ReceiveResult("updated", message.pk, message.conversation_id)


def apply_deletion(channel: Channel, deletion: MessageDeletion):
    from loket.inbox.services.ingest import ReceiveResult

    with transaction.atomic():
        message = _target(channel, deletion.target_external_id, direction=Direction.INBOUND)
        if message is None:
            return ReceiveResult("target_unknown")
        if (message.data or {}).get("deleted_at"):
            return ReceiveResult("duplicate", message.pk, message.conversation_id)
        at = (deletion.at or timezone.now()).isoformat()
        message.data = {**(message.data or {}), "deleted_at": at}
        message.save(update_fields=["data"])
        _announce(message, {"deleted_at": at}, Actor(AuthorType.CONTACT, message.author_contact_id))
    return ReceiveResult("updated", message.pk, message.conversation_id)


def reply_context(channel: Channel, external_id: str) -> dict | None:
    """What a reply shows of the message it answers: ``{"id", "excerpt", "direction"}``, or
    ``{"external_id"}`` alone when that message is not in Loket."""
    if not external_id:
        return None
    found = (
        Message.objects.filter(channel=channel, external_id=external_id)
        .order_by("direction")
        .values("pk", "text", "direction")
        .first()
    )
    if found is None:
        return {"external_id": external_id[:255]}
    excerpt = " ".join(found["text"].split())[:200]
    return {"id": found["pk"], "excerpt": excerpt, "direction": found["direction"]}
