"""receive(): the one ingest path. Every connector hands its normalised items here.

One transaction per item: dedupe (the unique (channel, external_id) constraint, not a look-up),
resolve the contact, thread into a conversation, store the message and its attachments, update the
conversation and enqueue follow-up work. Realtime events go out after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from loket import events
from loket.events import Actor
from loket.inbox import tasks
from loket.inbox.items import Ignored, InboundItem, InboundMessage, StatusUpdate
from loket.inbox.models import (
    DELIVERY_RANK,
    Attachment,
    AttachmentStatus,
    AuthorType,
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.sanitize import sanitize_html
from loket.tenancy.models import Workspace

log = logging.getLogger(__name__)

# Conversations a new customer message continues instead of starting a new one.
_ACTIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED)


@dataclass(frozen=True)
class ReceiveResult:
    outcome: str  # created | duplicate | ignored | status_applied | status_stale | status_unmatched
    message_id: int | None = None
    conversation_id: int | None = None

    @property
    def needs_retry(self) -> bool:
        # A status for a message whose send has not recorded its provider id yet.
        return self.outcome == "status_unmatched"


def receive(channel: Channel, item: InboundItem) -> ReceiveResult:
    if isinstance(item, InboundMessage):
        return _receive_message(channel, item)
    if isinstance(item, StatusUpdate):
        return apply_status(channel, item)
    if isinstance(item, Ignored):
        return ReceiveResult("ignored")
    raise TypeError(f"not an inbound item: {item!r}")


def _receive_message(channel: Channel, item: InboundMessage) -> ReceiveResult:
    if not item.external_id:
        raise ValueError("an inbound message needs the sender's message id")
    # Concurrent deliveries race on unique constraints; the loser retries once it can see the
    # winner's rows, and then finds its message to be a duplicate.
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _store_message(channel, item)
        except IntegrityError:
            if Message.objects.filter(channel=channel, external_id=item.external_id).exists():
                return ReceiveResult("duplicate")
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _store_message(channel: Channel, item: InboundMessage) -> ReceiveResult:
    now = timezone.now()
    contact = _resolve_contact(channel, item)
    conversation, created = _thread(channel, contact, item, now)

    message = Message.objects.create(
        workspace_id=channel.workspace_id,
        conversation=conversation,
        channel=channel,
        direction=Direction.INBOUND,
        kind=MessageKind.MESSAGE,
        author_type=AuthorType.CONTACT,
        author_contact=contact,
        text=item.text,
        html=sanitize_html(item.html) if item.html else "",
        external_id=item.external_id,
        data=item.data,
        sent_at=item.sent_at,
        created_at=now,
    )
    if item.attachments:
        _store_attachments(message, item)

    changes = _conversation_changes_on_inbound(conversation, now)
    if changes:
        Conversation.objects.filter(pk=conversation.pk).update(**changes)

    actor = Actor(AuthorType.CONTACT, contact.pk)
    if created:
        events.emit(events.ConversationCreated(channel.workspace_id, actor, conversation.pk))
    elif "status" in changes:
        events.emit(
            events.ConversationUpdated(
                channel.workspace_id, actor, conversation.pk, {"status": changes["status"]}
            )
        )
    events.emit(
        events.MessageCreated(
            channel.workspace_id,
            actor,
            conversation_id=conversation.pk,
            message_id=message.pk,
            kind=message.kind,
            direction=message.direction,
        )
    )
    return ReceiveResult("created", message.pk, conversation.pk)


def _resolve_contact(channel: Channel, item: InboundMessage) -> Contact:
    sender = item.contact
    identity = (
        ContactIdentity.objects.select_related("contact")
        .filter(channel=channel, external_id=sender.external_id)
        .first()
    )
    if identity is None:
        contact = Contact.objects.create(
            workspace_id=channel.workspace_id,
            name=sender.name[:200],
            email=sender.email[:254],
            phone=sender.phone[:40],
            locale=sender.locale[:10],
        )
        ContactIdentity.objects.create(
            workspace_id=channel.workspace_id,
            contact=contact,
            channel=channel,
            external_id=sender.external_id,
        )
        return contact
    contact = identity.contact
    while contact.merged_into_id is not None:
        contact = Contact.objects.get(pk=contact.merged_into_id)
    # Fill in what we did not know; never overwrite what an agent may have corrected.
    missing = {
        field: getattr(sender, field)[:limit]
        for field, limit in (("name", 200), ("email", 254), ("phone", 40), ("locale", 10))
        if getattr(sender, field) and not getattr(contact, field)
    }
    if missing:
        Contact.objects.filter(pk=contact.pk).update(**missing)
        for field, value in missing.items():
            setattr(contact, field, value)
    return contact


def _latest_conversation(channel: Channel, contact: Contact) -> Conversation | None:
    return (
        Conversation.objects.select_for_update()
        .filter(contact=contact, channel=channel)
        .order_by("-last_message_at", "-id")
        .first()
    )


def _continues(conversation: Conversation | None, now: dt.datetime) -> bool:
    if conversation is None:
        return False
    if conversation.status in _ACTIVE:
        return True
    if conversation.status == ConversationStatus.RESOLVED and conversation.resolved_at:
        return now - conversation.resolved_at <= dt.timedelta(
            days=settings.LOKET_REOPEN_WITHIN_DAYS
        )
    return False


def _thread(
    channel: Channel, contact: Contact, item: InboundMessage, now: dt.datetime
) -> tuple[Conversation, bool]:
    conversation = _latest_conversation(channel, contact)
    if _continues(conversation, now):
        return conversation, False
    # Serialise new-conversation decisions per contact, then look again.
    Contact.objects.select_for_update().filter(pk=contact.pk).first()
    conversation = _latest_conversation(channel, contact)
    if _continues(conversation, now):
        return conversation, False
    conversation = Conversation.objects.create(
        workspace_id=channel.workspace_id,
        channel=channel,
        contact=contact,
        number=next_conversation_number(channel.workspace_id),
        subject=item.subject[:255],
        team_id=channel.default_team_id,
        created_at=now,
        last_message_at=now,
    )
    return conversation, True


def next_conversation_number(workspace_id: int) -> int:
    Workspace.objects.filter(pk=workspace_id).update(
        next_conversation_number=F("next_conversation_number") + 1
    )
    return (
        Workspace.objects.values_list("next_conversation_number", flat=True).get(pk=workspace_id)
        - 1
    )


def _conversation_changes_on_inbound(conversation: Conversation, now: dt.datetime) -> dict:
    changes: dict = {"last_message_at": now, "last_inbound_at": now}
    if conversation.waiting_since is None:
        changes["waiting_since"] = now
    if conversation.status != ConversationStatus.OPEN:
        # A customer message wakes a snoozed conversation and reopens a resolved one.
        changes.update(status=ConversationStatus.OPEN, snoozed_until=None, resolved_at=None)
    return changes


def _store_attachments(message: Message, item: InboundMessage) -> None:
    from loket.inbox.services import media

    for attachment in item.attachments:
        stored = Attachment(
            workspace_id=message.workspace_id,
            message=message,
            filename=media.safe_filename(attachment.filename),
            content_type=attachment.content_type[:127] or "application/octet-stream",
        )
        if attachment.content is not None:
            media.store_content(stored, attachment.content)
        else:
            stored.source_url = attachment.url
            stored.status = AttachmentStatus.PENDING
            stored.save()
            tasks.fetch_attachment.enqueue(stored.pk)


def apply_status(channel: Channel, update: StatusUpdate) -> ReceiveResult:
    """Move a sent message's delivery status forward; never backwards."""
    if update.status not in DELIVERY_RANK:
        return ReceiveResult("ignored")
    message = (
        Message.objects.filter(channel=channel, external_id=update.external_id)
        .only("pk", "conversation_id", "status", "workspace_id")
        .first()
    )
    if message is None:
        return ReceiveResult("status_unmatched")
    rank = DELIVERY_RANK[update.status]
    if update.status == DeliveryStatus.FAILED:
        # Possible until delivery: a provider may report a sent message as undeliverable.
        earlier = [s for s, r in DELIVERY_RANK.items() if r <= rank and s != update.status]
    else:
        earlier = [s for s, r in DELIVERY_RANK.items() if r < rank or s == DeliveryStatus.FAILED]
    fields = {"status": update.status, "status_changed_at": update.at or timezone.now()}
    if update.status == DeliveryStatus.FAILED:
        fields["error"] = update.error or "the provider reported the message as failed"
    moved = Message.objects.filter(pk=message.pk, status__in=earlier).update(**fields)
    if not moved:
        return ReceiveResult("status_stale", message.pk, message.conversation_id)
    events.emit(
        events.MessageStatusChanged(
            message.workspace_id,
            Actor.system(),
            conversation_id=message.conversation_id,
            message_id=message.pk,
            status=update.status,
            error=fields.get("error", ""),
        )
    )
    return ReceiveResult("status_applied", message.pk, message.conversation_id)
