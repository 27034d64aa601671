"""What a rule's conditions look at, read lazily and once per evaluation: fifty rules about one
message load the conversation once and the labels only if a rule asks about labels."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from loket.inbox.models import (
    AuthorType,
    Conversation,
    Direction,
    Message,
    MessageKind,
)
from loket.tenancy.hours import Schedule

# Message text rules look at: long enough for any real question, short enough that a pattern
# over a pasted log stays cheap.
TEXT_LIMIT = 20_000


class Facts:
    def __init__(
        self,
        conversation: Conversation,
        *,
        message: Message | None = None,
        changes: dict[str, Any] | None = None,
        sla_target: str = "",
        now: dt.datetime | None = None,
    ) -> None:
        self.conversation = conversation
        self._message = message
        self.changes = changes or {}
        self.sla_target = sla_target
        self._now = now

    @classmethod
    def load(
        cls, conversation_id: int, workspace_id: int, *, message_id: int | None = None, **kwargs
    ) -> Facts | None:
        """The facts about a conversation (and the message that triggered the rules), in one
        query."""
        if message_id is not None:
            message = (
                Message.objects.select_related(
                    "conversation__contact", "conversation__channel", "conversation__workspace"
                )
                .filter(pk=message_id, workspace_id=workspace_id, conversation_id=conversation_id)
                .first()
            )
            if message is not None:
                return cls(message.conversation, message=message, **kwargs)
        conversation = (
            Conversation.objects.select_related("contact", "channel", "workspace")
            .filter(pk=conversation_id, workspace_id=workspace_id)
            .first()
        )
        return cls(conversation, **kwargs) if conversation is not None else None

    @property
    def now(self) -> dt.datetime:
        """The database's time, asked once and only when a rule needs it."""
        if self._now is None:
            from loket.automation import clock

            self._now = clock.now()
        return self._now

    def refresh(self) -> None:
        """After a rule acted: later rules see the conversation as it is now."""
        self.conversation.refresh_from_db(
            fields=["status", "priority", "assignee", "team", "snoozed_until", "custom_attributes"]
        )
        self.__dict__.pop("label_names", None)

    @property
    def contact(self):
        return self.conversation.contact

    @cached_property
    def message(self) -> Message | None:
        """The message that triggered the rule, else the customer's latest."""
        if self._message is not None:
            return self._message
        return (
            Message.objects.filter(
                conversation_id=self.conversation.pk,
                direction=Direction.INBOUND,
                kind=MessageKind.MESSAGE,
            )
            .order_by("-created_at", "-pk")
            .first()
        )

    @cached_property
    def message_text(self) -> str:
        message = self.message
        return (message.text or "")[:TEXT_LIMIT] if message is not None else ""

    @cached_property
    def label_names(self) -> set[str]:
        return {name.casefold() for name in self.conversation.labels.values_list("name", flat=True)}

    @cached_property
    def is_first_message(self) -> bool:
        message = self.message
        if message is None:
            return False
        return not Message.objects.filter(
            conversation_id=self.conversation.pk,
            direction=message.direction,
            kind=MessageKind.MESSAGE,
            pk__lt=message.pk,
        ).exists()

    @cached_property
    def has_attachments(self) -> bool:
        message = self.message
        return message is not None and message.attachments.exists()

    @cached_property
    def previous_conversations(self) -> int:
        return (
            Conversation.objects.filter(
                workspace_id=self.conversation.workspace_id,
                contact_id=self.conversation.contact_id,
                created_at__lt=self.conversation.created_at,
            )
            .exclude(pk=self.conversation.pk)
            .count()
        )

    @cached_property
    def inside_business_hours(self) -> bool:
        message = self.message
        at = message.created_at if message is not None and self._message is not None else self.now
        schedule = Schedule.of(self.conversation.workspace, self.conversation.channel)
        return schedule.is_open(at)

    @property
    def from_customer(self) -> bool:
        message = self.message
        return message is not None and message.author_type == AuthorType.CONTACT
