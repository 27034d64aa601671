"""Merging two conversations of one contact, undoing that, and splitting a message off.

Merge: the source's messages and internal notes move to the target (its activity lines stay: they
describe the source's own history), the source is closed with ``merged_into`` set, the target's
timestamps are recomputed from the messages it now holds, and a :class:`ConversationMerge` row
records exactly what moved so :func:`undo_conversation_merge` can put it back.

Split: one customer message moves into a new conversation of the same contact and channel. Only
that message moves, never the ones after it: what followed may answer either question, and an
agent who wants more moved can split again or merge back. The new conversation's times are
that message's, so the customer's next message continues whichever of the two holds their
latest message (ingest continues the latest conversation).

Every change is an activity line in the timelines involved and a ``conversation.*`` event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from loket import events
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationMerge,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    Notification,
)
from loket.inbox.services.conversations import (
    InvalidChange,
    _activity,
    _actor_for,
    check_actor,
    lock_in_order,
)
from loket.inbox.services.ingest import next_conversation_number
from loket.tenancy.models import Membership

# What moves with a merge: what the customer and the agents wrote.
_MOVED_KINDS = (MessageKind.MESSAGE, MessageKind.NOTE)
# The source's fields a merge changes, restored by an undo.
_SOURCE_FIELDS = ("status", "resolved_at", "snoozed_until", "last_message_at", "waiting_since")
_TICK = dt.timedelta(microseconds=1)  # the resolution of a stored time on both databases


def _as_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _from_json(field: str, value: Any) -> Any:
    if value is not None and field != "status":
        return parse_datetime(value)
    return value


def _link(one: Conversation, other: Conversation, actor, actions: tuple[str, str], **data) -> None:
    """Activity lines in both timelines, each naming the other conversation."""
    _activity(one, actor, actions[0], conversation_id=other.pk,
              conversation_number=other.number, **data)  # fmt: skip
    _activity(other, actor, actions[1], conversation_id=one.pk,
              conversation_number=one.number, **data)  # fmt: skip


def recompute_timestamps(conversation: Conversation) -> dict[str, Any]:
    """Set the conversation's message timestamps from the messages it holds now (saved).

    The same rules as ingest and replies: any message counts for ``last_message_at``; the
    customer waits from their first message after the latest reply; the first response is the
    first reply a member wrote.
    """
    visible = Message.objects.filter(conversation=conversation, kind=MessageKind.MESSAGE)
    found = visible.aggregate(
        last_message_at=Max("created_at"),
        last_inbound_at=Max("created_at", filter=Q(direction=Direction.INBOUND)),
        last_outbound_at=Max("created_at", filter=Q(direction=Direction.OUTBOUND)),
        first_response_at=Min(
            "created_at",
            filter=Q(direction=Direction.OUTBOUND, author_type=AuthorType.MEMBER),
        ),
    )
    waiting = visible.filter(direction=Direction.INBOUND)
    if found["last_outbound_at"] is not None:
        waiting = waiting.filter(created_at__gt=found["last_outbound_at"])
    fields = {
        **found,
        # A conversation without messages keeps its creation time as its place in the lists.
        "last_message_at": found["last_message_at"] or conversation.created_at,
        "waiting_since": waiting.aggregate(at=Min("created_at"))["at"],
    }
    for name, value in fields.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=[*fields, "updated_at"])
    return fields


@transaction.atomic
def merge_conversations(
    source: Conversation, target: Conversation, *, actor: Membership | None
) -> ConversationMerge:
    """Move ``source``'s messages and notes into ``target`` and close ``source``."""
    if source.pk == target.pk:
        raise InvalidChange(_("a conversation cannot be merged into itself"))
    if source.workspace_id != target.workspace_id:
        raise InvalidChange(_("the conversations belong to different workspaces"))
    check_actor(actor, target.workspace_id)
    locked = lock_in_order(Conversation, source.pk, target.pk)
    source, target = locked[source.pk], locked[target.pk]
    if source.contact_id != target.contact_id:
        raise InvalidChange(_("only conversations of the same contact can be merged"))
    if source.merged_into_id is not None:
        raise InvalidChange(
            _("conversation #%(number)s was already merged into another")
            % {"number": source.number}
        )
    if target.merged_into_id is not None:
        raise InvalidChange(
            _("conversation #%(number)s was merged into another") % {"number": target.number}
        )

    moving = Message.objects.filter(conversation=source, kind__in=_MOVED_KINDS)
    message_ids = sorted(moving.values_list("pk", flat=True))
    Message.objects.filter(pk__in=message_ids).update(conversation=target)
    # Notifications follow their message, so their links open where the message now is.
    Notification.objects.filter(message_id__in=message_ids).update(conversation=target)
    target_labels = set(target.labels.values_list("pk", flat=True))
    labels_added = sorted(set(source.labels.values_list("pk", flat=True)) - target_labels)
    if labels_added:
        target.labels.add(*labels_added)

    recompute_timestamps(target)
    previous = {name: _as_json(getattr(source, name)) for name in _SOURCE_FIELDS}
    source.merged_into = target
    source.status = ConversationStatus.CLOSED
    source.snoozed_until = None
    source.waiting_since = None
    # Ingest continues a contact's latest conversation on a channel (by last_message_at, then
    # id): the emptied source must sort strictly behind the target, or the customer's next
    # message would find the closed source and start a new conversation.
    source.last_message_at = min(source.created_at, target.last_message_at - _TICK)
    source.save(update_fields=["merged_into", *_SOURCE_FIELDS, "updated_at"])

    merge = ConversationMerge.objects.create(
        workspace_id=target.workspace_id,
        source=source,
        target=target,
        actor=actor,
        moved={"message_ids": message_ids, "source": previous, "labels_added": labels_added},
    )
    _link(source, target, actor, ("merged_into", "merged_from"), messages=len(message_ids),
          merge_id=merge.pk)  # fmt: skip
    who = _actor_for(actor)
    events.emit(
        events.ConversationUpdated(
            target.workspace_id,
            who,
            source.pk,
            {"status": ConversationStatus.CLOSED, "merged_into_id": target.pk},
        )
    )
    events.emit(
        events.ConversationUpdated(
            target.workspace_id,
            who,
            target.pk,
            {"merged_from_id": source.pk, "moved_message_ids": message_ids},
        )
    )
    return merge


@transaction.atomic
def undo_conversation_merge(
    merge: ConversationMerge, *, actor: Membership | None
) -> ConversationMerge:
    """Move exactly the merged messages back and restore the source as it was."""
    check_actor(actor, merge.workspace_id)
    merge = ConversationMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise InvalidChange(_("this merge was already undone"))
    locked = lock_in_order(Conversation, merge.source_id, merge.target_id)
    source, target = locked[merge.source_id], locked[merge.target_id]
    if target.merged_into_id is not None:
        raise InvalidChange(
            _("conversation #%(number)s was merged into another since: undo that first")
            % {"number": target.number}
        )
    if source.merged_into_id != target.pk:
        raise InvalidChange(
            _("conversation #%(number)s is no longer merged") % {"number": source.number}
        )

    # Only the merged messages still in the target: one split off since stays where it is.
    message_ids = sorted(
        Message.objects.filter(
            conversation=target, pk__in=merge.moved.get("message_ids", [])
        ).values_list("pk", flat=True)
    )
    Message.objects.filter(pk__in=message_ids).update(conversation=source)
    Notification.objects.filter(message_id__in=message_ids).update(conversation=source)
    labels_added = merge.moved.get("labels_added", [])
    if labels_added:
        target.labels.remove(*labels_added)

    source.merged_into = None
    for name, value in merge.moved.get("source", {}).items():
        if name in _SOURCE_FIELDS:
            setattr(source, name, _from_json(name, value))
    source.save(update_fields=["merged_into", *_SOURCE_FIELDS, "updated_at"])
    recompute_timestamps(target)

    merge.undone_at = timezone.now()
    merge.save(update_fields=["undone_at"])
    _link(source, target, actor, ("merge_undone", "unmerged"), messages=len(message_ids),
          merge_id=merge.pk)  # fmt: skip
    who = _actor_for(actor)
    events.emit(
        events.ConversationUpdated(
            source.workspace_id,
            who,
            source.pk,
            {"status": source.status, "merged_into_id": None},
        )
    )
    events.emit(
        events.ConversationUpdated(
            target.workspace_id,
            who,
            target.pk,
            {"unmerged_id": source.pk, "moved_message_ids": message_ids},
        )
    )
    return merge


@transaction.atomic
def split_message(message: Message, *, actor: Membership | None) -> Conversation:
    """Move one customer message into a new conversation of the same contact and channel."""
    check_actor(actor, message.workspace_id)
    if message.kind != MessageKind.MESSAGE or message.direction != Direction.INBOUND:
        raise InvalidChange(_("only a customer's message can be moved to a new conversation"))
    source = lock_in_order(Conversation, message.conversation_id)[message.conversation_id]
    # The message as it is now, under the conversation's lock (a merge may have moved it).
    message = Message.objects.get(pk=message.pk)
    if message.conversation_id != source.pk:
        raise InvalidChange(_("the message was moved meanwhile; try again"))
    others = Message.objects.filter(
        conversation=source, kind=MessageKind.MESSAGE, direction=Direction.INBOUND
    ).exclude(pk=message.pk)
    if not others.exists():
        raise InvalidChange(_("the conversation's only customer message cannot be split off"))

    now = timezone.now()
    created = Conversation.objects.create(
        workspace_id=source.workspace_id,
        channel_id=message.channel_id,
        contact_id=source.contact_id,
        number=next_conversation_number(source.workspace_id),
        subject=source.subject,
        team_id=source.team_id,
        language=source.language,
        created_at=now,
        last_message_at=message.created_at,
    )
    Message.objects.filter(pk=message.pk).update(conversation=created)
    Notification.objects.filter(message_id=message.pk).update(conversation=created)
    recompute_timestamps(source)
    recompute_timestamps(created)
    _link(source, created, actor, ("message_split", "split_from"), message_id=message.pk)
    who = _actor_for(actor)
    events.emit(events.ConversationCreated(created.workspace_id, who, created.pk))
    events.emit(
        events.ConversationUpdated(
            source.workspace_id,
            who,
            source.pk,
            {"split_message_id": message.pk, "split_to_id": created.pk},
        )
    )
    return created
