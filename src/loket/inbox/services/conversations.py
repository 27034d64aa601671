"""Changing a conversation: status, assignee, team, labels, priority, snooze.

Each change is recorded as an activity line in the timeline (who did what) and emitted as one
``conversation.updated`` event after commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loket import events
from loket.events import Actor
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Label,
    Message,
    MessageKind,
    Priority,
)
from loket.tenancy.models import Membership, Team

_UNSET: Any = object()


class InvalidChange(ValueError):
    pass


def check_actor(actor: Membership | None, workspace_id: int) -> None:
    if actor is not None and actor.workspace_id != workspace_id:
        raise InvalidChange(_("the acting member belongs to another workspace"))


def lock_in_order(model, *pks: int) -> dict:
    """The rows, locked in primary-key order (so two merges of the same rows cannot
    deadlock), by primary key."""
    locked = model.objects.select_for_update().filter(pk__in=pks).order_by("pk")
    return {row.pk: row for row in locked}


def _actor_for(member: Membership | None, context: dict | None = None) -> Actor:
    """Who the event says did it: the member, else the rule that acted (so it does not trigger
    itself again), else the system."""
    if member:
        return Actor(AuthorType.MEMBER, member.pk)
    if context and context.get("via") == "rule" and context.get("rule_id"):
        return Actor("rule", context["rule_id"])
    return Actor.system()


def _activity(conversation: Conversation, actor: Membership | None, action: str, **data) -> None:
    Message.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.ACTIVITY,
        author_type=AuthorType.MEMBER if actor else AuthorType.SYSTEM,
        author_member=actor,
        text=action,
        data={"action": action, **data},
    )


def update_conversation(
    conversation: Conversation,
    *,
    actor: Membership | None,
    status: str = _UNSET,
    assignee: Membership | None = _UNSET,
    team: Team | None = _UNSET,
    priority: int = _UNSET,
    labels: list[Label] = _UNSET,
    snoozed_until: dt.datetime | None = _UNSET,
    language: str = _UNSET,
    context: dict | None = None,
) -> Conversation:
    """Apply the given changes; arguments left out stay as they are. Related objects must belong
    to the conversation's workspace (the caller resolved them through a selector). ``context``
    goes on the activity lines, e.g. ``{"via": "auto_assign"}`` for the timeline to say so."""
    context = context or {}

    def note(action: str, **data) -> None:
        _activity(conversation, actor, action, **data, **context)

    workspace_id = conversation.workspace_id
    for related in (assignee, team):
        if related not in (_UNSET, None) and related.workspace_id != workspace_id:
            raise InvalidChange(_("that belongs to another workspace"))
    if labels is not _UNSET and any(label.workspace_id != workspace_id for label in labels):
        raise InvalidChange(_("a label belongs to another workspace"))
    if status is not _UNSET and status not in ConversationStatus.values:
        raise InvalidChange(_("unknown status %(status)s") % {"status": repr(status)})
    if priority is not _UNSET and priority not in Priority.values:
        raise InvalidChange(_("unknown priority %(priority)s") % {"priority": repr(priority)})

    changes: dict[str, Any] = {}
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        fields: dict[str, Any] = {}
        if status is not _UNSET and status != conversation.status:
            fields["status"] = status
            fields["resolved_at"] = now if status == ConversationStatus.RESOLVED else None
            if status != ConversationStatus.SNOOZED:
                fields["snoozed_until"] = None
            elif snoozed_until is not _UNSET:
                fields["snoozed_until"] = snoozed_until
            changes["status"] = status
            until = fields.get("snoozed_until")
            note(
                "status_changed",
                status=status,
                previous=conversation.status,
                snoozed_until=until.isoformat() if until else None,
            )
        if (
            "status" not in fields
            and snoozed_until is not _UNSET
            and conversation.status == ConversationStatus.SNOOZED
            and snoozed_until != conversation.snoozed_until
        ):
            fields["snoozed_until"] = snoozed_until
            changes["snoozed_until"] = snoozed_until.isoformat() if snoozed_until else None
            note("snooze_changed", snoozed_until=changes["snoozed_until"])
        if (
            assignee is not _UNSET
            and (assignee.pk if assignee else None) != conversation.assignee_id
        ):
            fields["assignee"] = assignee
            changes["assignee_id"] = assignee.pk if assignee else None
            note("assigned" if assignee else "unassigned",
                 assignee_id=changes["assignee_id"],
                 assignee_name=assignee.display_name if assignee else "")  # fmt: skip
        if team is not _UNSET and (team.pk if team else None) != conversation.team_id:
            fields["team"] = team
            changes["team_id"] = team.pk if team else None
            note("team_changed", team_id=changes["team_id"],
                 team_name=team.name if team else "")  # fmt: skip
        if priority is not _UNSET and priority != conversation.priority:
            fields["priority"] = priority
            changes["priority"] = priority
            note("priority_changed", priority=priority)
        if language is not _UNSET and language != conversation.language:
            # Metadata (detected, or set by an agent): an event for the rules, no timeline line.
            fields["language"] = language[:10]
            changes["language"] = fields["language"]
        if fields:
            for name, value in fields.items():
                setattr(conversation, name, value)
            conversation.save(update_fields=[*fields.keys(), "updated_at"])
        if labels is not _UNSET:
            current = set(conversation.labels.values_list("pk", flat=True))
            wanted = {label.pk for label in labels}
            if current != wanted:
                conversation.labels.set(labels)
                changes["labels"] = sorted(label.name for label in labels)
                note("labels_changed", labels=changes["labels"])
        if changes:
            events.emit(
                events.ConversationUpdated(
                    workspace_id, _actor_for(actor, context), conversation.pk, changes
                )
            )
    return conversation


def ensure_labels(workspace_id: int, names: list[str]) -> list[Label]:
    """The workspace's labels with these names, in the given order; missing ones are created."""
    found = {
        label.name: label
        for label in Label.objects.filter(workspace_id=workspace_id, name__in=names)
    }
    for name in names:
        if name not in found:
            found[name], _created = Label.objects.get_or_create(
                workspace_id=workspace_id, name=name
            )
    return [found[name] for name in names]


def wake_due_snoozed() -> int:
    """Reopen conversations whose snooze time has passed (a periodic job)."""
    woken = 0
    due = Conversation.objects.filter(
        status=ConversationStatus.SNOOZED, snoozed_until__lte=timezone.now()
    ).values_list("pk", flat=True)[:500]
    for pk in list(due):
        with transaction.atomic():
            # Still due once locked: an agent may have resolved or re-snoozed it meanwhile.
            conversation = (
                Conversation.objects.select_for_update()
                .filter(pk=pk, status=ConversationStatus.SNOOZED, snoozed_until__lte=timezone.now())
                .first()
            )
            if conversation is None:
                continue
            update_conversation(conversation, actor=None, status=ConversationStatus.OPEN)
        woken += 1
    return woken
