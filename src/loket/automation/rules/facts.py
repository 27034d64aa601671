"""What a rule's conditions look at, read lazily and once per evaluation: fifty rules about one
message read the message once, its conversation only if a rule gets past the message's text,
and the labels only if a rule asks about labels."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from loket.inbox.models import (
    AuthorType,
    Channel,
    Conversation,
    Direction,
    Message,
    MessageKind,
)
from loket.tenancy.hours import Schedule
from loket.tenancy.models import Workspace

# Message text rules look at: long enough for any real question, short enough that a pattern
# over a pasted log stays cheap.
TEXT_LIMIT = 20_000


# What conditions read, and no more: message, conversation and contact rows hold much else
# (HTML, SLA state, timestamps) that would only cost decoding. Acting reloads in full.
_MESSAGE_COLUMNS = (
    *("id", "workspace_id", "conversation_id", "channel_id", "direction", "kind"),
    *("author_type", "text", "created_at"),
)
_CONVERSATION_COLUMNS = (
    *("id", "workspace_id", "channel_id", "contact_id", "number", "subject", "status"),
    *("priority", "assignee_id", "team_id", "language", "custom_attributes"),
    *("created_at", "merged_into_id"),
    *(
        f"contact__{name}"
        for name in ("id", "workspace_id", "name", "email", "phone", "attributes")
    ),
)


def _conversations():
    return Conversation.objects.select_related("contact").only(*_CONVERSATION_COLUMNS)


class Facts:
    """Most rules fail on the message's text, so for a message the conversation and its contact
    are loaded only when a condition asks about them (conditions ask cheap questions first)."""

    def __init__(
        self,
        conversation: Conversation | None,
        *,
        message: Message | None = None,
        changes: dict[str, Any] | None = None,
        sla_target: str = "",
        now: dt.datetime | None = None,
    ) -> None:
        if conversation is None and message is None:
            raise ValueError("facts are about a conversation or a message")
        self._conversation = conversation
        self.conversation_id = (
            conversation.pk if conversation is not None else message.conversation_id
        )
        self._message = message
        self.changes = changes or {}
        self.sla_target = sla_target
        self._now = now

    @classmethod
    def load(
        cls,
        conversation_id: int,
        workspace_id: int,
        *,
        message_id: int | None = None,
        with_conversation: bool = True,
        **kwargs,
    ) -> Facts | None:
        """The facts about a conversation, or about the message that triggered the rules: with
        its conversation and contact in the same query when ``with_conversation`` (some rule
        will surely ask), else read when first asked for."""
        if message_id is not None:
            messages = Message.objects.filter(
                pk=message_id, workspace_id=workspace_id, conversation_id=conversation_id
            )
            if with_conversation:
                columns = [
                    *_MESSAGE_COLUMNS,
                    *(f"conversation__{c}" for c in _CONVERSATION_COLUMNS),
                ]
                messages = messages.select_related("conversation__contact").only(*columns)
            else:
                messages = messages.only(*_MESSAGE_COLUMNS)
            message = messages.first()
            if message is not None:
                conversation = message.conversation if with_conversation else None
                return cls(conversation, message=message, **kwargs)
        conversation = (
            _conversations().filter(pk=conversation_id, workspace_id=workspace_id).first()
        )
        return cls(conversation, **kwargs) if conversation is not None else None

    @property
    def trigger_message_id(self) -> int | None:
        """The message that triggered the rules, if a message did."""
        return self._message.pk if self._message is not None else None

    @property
    def conversation(self) -> Conversation:
        if self._conversation is None:
            self._conversation = _conversations().get(pk=self.conversation_id)
        return self._conversation

    @property
    def now(self) -> dt.datetime:
        """The database's time, asked once and only when a rule needs it."""
        if self._now is None:
            from loket.automation import clock

            self._now = clock.now()
        return self._now

    def refresh(self) -> None:
        """After a rule acted: later rules see the conversation as it is now."""
        self._conversation = None  # read again when a later rule asks
        self.__dict__.pop("label_names", None)

    @property
    def contact(self):
        return self.conversation.contact

    # The channel and workspace only when a condition needs them, and only the columns rules
    # read (a channel row carries encrypted credentials, decrypted whenever it is loaded).
    @cached_property
    def channel(self) -> Channel:
        return Channel.objects.only("kind", "name", "business_hours", "workspace_id").get(
            pk=self.conversation.channel_id
        )

    @cached_property
    def workspace(self) -> Workspace:
        return Workspace.objects.only("name", "business_hours", "holidays", "time_zone").get(
            pk=self.conversation.workspace_id
        )

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
    def insight(self):
        """The conversation's enrichment (loket.knowledge.enrichment): one query, only when a
        rule asks about sentiment, urgency or suggested labels; None before it is estimated."""
        from loket.knowledge.models import ConversationInsight

        return (
            ConversationInsight.objects.filter(conversation_id=self.conversation_id)
            .only("sentiment", "urgency", "predicted_labels", "conversation_id")
            .first()
        )

    @property
    def sentiment(self) -> str:
        return self.insight.sentiment if self.insight is not None else ""

    @property
    def urgency(self) -> str:
        return self.insight.urgency if self.insight is not None else ""

    @property
    def predicted_label_names(self) -> set[str]:
        if self.insight is None:
            return set()
        return {
            str(item.get("name", "")).casefold()
            for item in self.insight.predicted_labels or []
            if isinstance(item, dict)
        }

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
        schedule = Schedule.of(self.workspace, self.channel)
        return schedule.is_open(at)

    @property
    def from_customer(self) -> bool:
        message = self.message
        return message is not None and message.author_type == AuthorType.CONTACT
