"""Learning from resolved conversations (a workspace's opt-in,
``Workspace.learn_from_conversations``, off by default): a resolved conversation's question and
its agents' answer become one internal passage, which the composer suggests to agents for a
similar customer question. Never shown to customers: retrieval finds these passages only with
``include_internal`` and ``include_conversations`` (loket.knowledge.retrieval), which only the
composer's suggestions ask for — the help center, the widget, the bot and the API never do.

``sweep`` (the ``learn_from_conversations`` job, every minute) works in the background:

* drops the passages of conversations that are no longer resolved (reopened, snoozed, merged…)
  and of workspaces that turned the setting off (turning it off here drops them at once too);
  a deleted conversation's passage goes by cascade;
* for opted-in workspaces, (re)makes the passage of each conversation resolved in the last
  ``LOOKBACK_DAYS`` days that has none made from its latest resolution (``source_at`` is the
  ``resolved_at`` it was made from), newest first, ``BATCH`` at a time.

A passage's text is ``"Q: <question>\\nA: <answer>"``: the question is the customer's messages
before the first agent reply, the answer the agents' replies (outbound messages written by
members: no internal notes, no bot messages), at most ``MAX_WORDS`` words together. E-mail
addresses and phone numbers are replaced by ``[email]`` and ``[phone]`` before it is stored or
embedded (simple patterns: names and addresses in the text are not recognised).
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.knowledge import embeddings
from loket.knowledge.models import Passage
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import require_admin

BATCH = 100
LOOKBACK_DAYS = 365
QUESTION_WORDS = 100
MAX_WORDS = 300

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A run of digits with spaces, dots, dashes, slashes or brackets between them; a phone number
# when it has at least PHONE_DIGITS digits (a date such as 2026-12-02 has eight).
_NUMBER = re.compile(r"(?<![\w+])\+?\(?\d[\d \t().\-/]*\d(?!\w)")
PHONE_DIGITS = 9


def scrub(text: str) -> str:
    """``text`` without e-mail addresses and phone numbers."""
    text = EMAIL.sub("[email]", text or "")

    def phone(match: re.Match) -> str:
        found = match.group(0)
        if sum(c.isdigit() for c in found) < PHONE_DIGITS:
            return found
        return "[phone]"

    return _NUMBER.sub(phone, text)


def _words(texts: list[str], limit: int) -> str:
    words = " ".join(texts).split()
    return " ".join(words[:limit])


def passage_text(conversation: Conversation) -> str | None:
    """``"Q: …\\nA: …"`` of a conversation, scrubbed; None without a question or an answer."""
    rows = list(
        Message.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            kind=MessageKind.MESSAGE,
        )
        .filter(
            Q(direction=Direction.INBOUND, author_type=AuthorType.CONTACT)
            | Q(direction=Direction.OUTBOUND, author_type=AuthorType.MEMBER)
        )
        .exclude(text="")
        .order_by("created_at", "pk")
        .values_list("direction", "text")
    )
    question: list[str] = []
    answer: list[str] = []
    for direction, text in rows:
        if direction == Direction.INBOUND:
            if not answer:  # the customer's first message(s), before any reply
                question.append(text)
        elif question:  # an agent's replies to it (not an agent's opening message)
            answer.append(text)
    question_text = _words([scrub(t) for t in question], QUESTION_WORDS)
    if not question_text or not answer:
        return None
    used = len(question_text.split())
    answer_text = _words([scrub(t) for t in answer], max(0, MAX_WORDS - used))
    if not answer_text:
        return None
    return f"Q: {question_text}\nA: {answer_text}"


def _forget(workspace_ids) -> None:
    from loket.knowledge import retrieval

    for workspace_id in set(workspace_ids):
        retrieval.changed(workspace_id)


def drop_stale() -> int:
    """Remove the passages of conversations no longer resolved and of workspaces that opted
    out; returns how many."""
    stale = Passage.objects.filter(conversation__isnull=False).filter(
        Q(workspace__learn_from_conversations=False)
        | ~Q(conversation__status=ConversationStatus.RESOLVED)
    )
    workspaces = set(stale.values_list("workspace_id", flat=True))
    if not workspaces:
        return 0
    count, _by_model = stale.delete()
    _forget(workspaces)
    return count


def due(limit: int = BATCH) -> list[Conversation]:
    """Resolved conversations of opted-in workspaces without a passage of their latest
    resolution, with a question and an agent's answer, newest first."""
    since = timezone.now() - dt.timedelta(days=LOOKBACK_DAYS)
    messages = Message.objects.filter(
        conversation_id=OuterRef("pk"), kind=MessageKind.MESSAGE
    ).exclude(text="")
    return list(
        Conversation.objects.filter(
            workspace__learn_from_conversations=True,
            status=ConversationStatus.RESOLVED,
            resolved_at__gte=since,
        )
        .filter(
            Exists(messages.filter(direction=Direction.OUTBOUND, author_type=AuthorType.MEMBER)),
            Exists(messages.filter(direction=Direction.INBOUND, author_type=AuthorType.CONTACT)),
        )
        .exclude(
            Exists(
                Passage.objects.filter(
                    conversation_id=OuterRef("pk"), source_at=OuterRef("resolved_at")
                )
            )
        )
        .select_related("workspace")
        .order_by("-resolved_at", "-pk")[:limit]
    )


def index(conversations: list[Conversation]) -> int:
    """(Re)make the passages of these resolved conversations; returns how many were made."""
    rows = []
    for conversation in conversations:
        text = passage_text(conversation)
        rows.append(
            Passage(
                workspace_id=conversation.workspace_id,
                conversation=conversation,
                source_at=conversation.resolved_at,
                locale=(conversation.language or conversation.workspace.locale or "en")[:10],
                internal=True,
                # Nothing to learn (no question answered): an empty row without an embedding,
                # so the conversation is not looked at again until it is resolved anew.
                text=text or "",
                model=embeddings.MODEL if text else "",
            )
        )
    made = [row for row in rows if row.text]
    if made:
        vectors = embeddings.embed([row.text for row in made])
        for row, vector in zip(made, vectors, strict=True):
            row.embedding = embeddings.to_bytes(vector)
    with transaction.atomic():
        Passage.objects.filter(conversation__in=[c.pk for c in conversations]).delete()
        Passage.objects.bulk_create(rows)
    _forget(c.workspace_id for c in conversations)
    return len(made)


def _round(limit: int) -> tuple[int, int, int]:
    """(conversations looked at, passages made, passages dropped)."""
    dropped = drop_stale()
    conversations = due(limit)
    made = index(conversations) if conversations else 0
    return len(conversations), made, dropped


def sweep(limit: int = BATCH) -> tuple[int, int]:
    """One round: (passages made, passages dropped)."""
    _seen, made, dropped = _round(limit)
    return made, dropped


def catch_up(limit: int = BATCH, *, batches: int = 20) -> int:
    """Rounds until nothing is due (the periodic job); returns how many passages were made."""
    made_total = 0
    for _ in range(batches):
        seen, made, _dropped = _round(limit)
        made_total += made
        if seen < limit:
            break
    return made_total


def set_learning(workspace: Workspace, enabled: bool, *, actor: Membership | None) -> Workspace:
    """Turn learning from resolved conversations on or off; off drops every passage made from a
    conversation at once (on: the next sweep makes them)."""
    require_admin(
        actor,
        workspace.pk,
        gettext("Only owners and admins can change where suggestions come from."),
    )
    with transaction.atomic():
        Workspace.objects.filter(pk=workspace.pk).update(learn_from_conversations=enabled)
        workspace.learn_from_conversations = enabled
        if not enabled:
            Passage.objects.filter(workspace_id=workspace.pk, conversation__isnull=False).delete()
    _forget([workspace.pk])
    return workspace
