"""Managing a workspace's labels: create, rename, recolour, delete.

Label names are unique per workspace regardless of case here, so "Billing" and "billing" never
both appear in the label picker. Deleting a label takes it off every conversation.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from loket import events
from loket.events import Actor
from loket.inbox.models import AuthorType, Conversation, ConversationStatus, Label
from loket.tenancy.models import Membership, Workspace

COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
NAME_MAX_LENGTH = Label._meta.get_field("name").max_length


class InvalidLabel(ValueError):
    """``str(exc)`` says what is wrong, for the person who entered it."""


def _clean(workspace_id: int, name: str, color: str, *, exclude_pk: int | None = None):
    name = (name or "").strip()
    if not name:
        raise InvalidLabel(gettext("A label needs a name."))
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidLabel(
            gettext("A label name has at most %(limit)d characters.") % {"limit": NAME_MAX_LENGTH}
        )
    if not COLOR_PATTERN.match(color or ""):
        raise InvalidLabel(gettext("A colour is written as #rrggbb, for example #1f5fd1."))
    clash = Label.objects.filter(workspace_id=workspace_id, name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise InvalidLabel(gettext("There is already a label called “%(name)s”.") % {"name": name})
    return name, color.lower()


def create_label(workspace: Workspace, *, name: str, color: str) -> Label:
    name, color = _clean(workspace.pk, name, color)
    try:
        with transaction.atomic():
            return Label.objects.create(workspace=workspace, name=name, color=color)
    except IntegrityError:  # created meanwhile by someone else
        raise InvalidLabel(
            gettext("There is already a label called “%(name)s”.") % {"name": name}
        ) from None


def update_label(label: Label, *, name: str, color: str) -> Label:
    name, color = _clean(label.workspace_id, name, color, exclude_pk=label.pk)
    label.name, label.color = name, color
    try:
        with transaction.atomic():
            label.save(update_fields=["name", "color"])
    except IntegrityError:
        raise InvalidLabel(
            gettext("There is already a label called “%(name)s”.") % {"name": name}
        ) from None
    return label


# Conversations agents are still working on; only their open views need to hear of the change.
_ACTIVE = [ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED]


def delete_label(label: Label, *, actor: Membership | None) -> None:
    """Delete the label; conversations lose it. Each active conversation that had it is announced
    as updated (its remaining labels), so live inboxes drop the chip; no activity line is
    written, as nobody changed those conversations one by one."""
    through = Conversation.labels.through
    with transaction.atomic():
        affected = list(
            Conversation.objects.filter(
                workspace_id=label.workspace_id, labels=label, status__in=_ACTIVE
            ).values_list("pk", flat=True)
        )
        label.delete()
        remaining: dict[int, list[str]] = {pk: [] for pk in affected}
        for conversation_id, name in through.objects.filter(
            conversation_id__in=affected
        ).values_list("conversation_id", "label__name"):
            remaining[conversation_id].append(name)
        who = Actor(AuthorType.MEMBER, actor.pk) if actor else Actor.system()
        for conversation_id, names in remaining.items():
            events.emit(
                events.ConversationUpdated(
                    label.workspace_id, who, conversation_id, {"labels": sorted(names)}
                )
            )
