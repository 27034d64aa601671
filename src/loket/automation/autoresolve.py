"""Resolving conversations the customer left hanging: "resolve conversations pending on the
customer for N days, sending this closing message first".

Set as the **closing** auto-reply (loket.automation.models.AutoReply, kind ``closing``, with
``days`` 1-90), for the workspace or per channel (a channel's own wins; a disabled one switches
it off there); off until someone sets it. A periodic job (:func:`run`, every few minutes) looks
at the database's clock (loket.automation.clock) and, for each conversation pending for at
least N days:

- pending since: the latest activity line that set it to pending (the rules engine's reading,
  ``loket.automation.rules.engine.pending_since``);
- never when the customer wrote last (their question is waiting for an answer, whatever the
  status says);
- sends the closing message (the canned replies' variables, as the system, marked
  ``data["auto_reply"] = "closing"``) and resolves the conversation; the timeline says
  "Resolved automatically after N days without an answer". A reply the channel cannot send
  any more (a closed reply window) is left out and the conversation resolved all the same;
- once per pending episode and safe with two workers: the conversation row is locked and
  checked again (still pending, the same episode) before anything happens, and the resolve
  ends the episode.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import OuterRef, Subquery

from loket.automation import clock
from loket.automation.canned import render_text
from loket.automation.models import AutoReply, AutoReplyKind
from loket.automation.rules.engine import pending_since
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services import outbound
from loket.inbox.services.conversations import update_conversation

log = logging.getLogger(__name__)
BATCH = 200


def _last_direction():
    """The direction of the conversation's latest customer message or reply (notes and
    activity lines do not count)."""
    return Subquery(
        Message.objects.filter(conversation_id=OuterRef("pk"), kind=MessageKind.MESSAGE)
        .order_by("-created_at", "-pk")
        .values("direction")[:1]
    )


def due(policy: AutoReply, now: dt.datetime, *, own_channels: set[int] = frozenset()):
    """The conversations ``policy`` resolves at ``now``, each annotated with ``episode`` (when it
    became pending). A workspace's policy skips the channels in ``own_channels`` (they have a
    closing message of their own, or switched it off)."""
    cutoff = now - dt.timedelta(days=policy.days or 0)
    found = Conversation.objects.filter(
        workspace_id=policy.workspace_id,
        status=ConversationStatus.PENDING,
        merged_into__isnull=True,
    )
    if policy.channel_id is not None:
        found = found.filter(channel_id=policy.channel_id)
    elif own_channels:
        found = found.exclude(channel_id__in=own_channels)
    return (
        found.annotate(episode=pending_since(), last_direction=_last_direction())
        .filter(episode__isnull=False, episode__lte=cutoff)
        .exclude(last_direction=Direction.INBOUND)
    )


def _policies() -> list[tuple[AutoReply, set[int]]]:
    """Every enabled closing policy, with (for a workspace's) the channels that set their own."""
    rows = list(AutoReply.objects.filter(kind=AutoReplyKind.CLOSING).order_by("workspace_id", "pk"))
    own: dict[int, set[int]] = {}
    for row in rows:
        if row.channel_id is not None:
            own.setdefault(row.workspace_id, set()).add(row.channel_id)
    return [
        (row, own.get(row.workspace_id, set()) if row.channel_id is None else set())
        for row in rows
        if row.enabled and row.days
    ]


def run(now: dt.datetime | None = None) -> int:
    """Resolve every conversation that has waited long enough (a periodic job). Returns how
    many were resolved."""
    now = now or clock.now()
    resolved = 0
    for policy, own_channels in _policies():
        candidates = list(
            due(policy, now, own_channels=own_channels)
            .order_by("episode", "pk")
            .values_list("pk", "episode")[:BATCH]
        )
        for pk, episode in candidates:
            if resolve_one(pk, policy, episode):
                resolved += 1
    return resolved


def resolve_one(pk: int, policy: AutoReply, episode: dt.datetime) -> bool:
    """Send the closing message and resolve one conversation, if it still qualifies once its row
    is locked (another worker, an agent or the customer may have got there first)."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update()
            .filter(pk=pk, status=ConversationStatus.PENDING)
            .first()
        )
        if conversation is None:
            return False
        still = (
            Conversation.objects.filter(pk=pk)
            .annotate(episode=pending_since(), last_direction=_last_direction())
            .values("episode", "last_direction")
            .first()
        )
        if (
            still is None
            or still["episode"] != episode
            or still["last_direction"] == Direction.INBOUND
        ):
            return False
        conversation = Conversation.objects.select_related("contact", "workspace").get(pk=pk)
        text, _unknown = render_text(policy.body, conversation)
        sent = False
        if text.strip():
            try:
                with transaction.atomic():
                    outbound.reply(
                        conversation,
                        author=None,
                        text=text.strip(),
                        author_type=AuthorType.SYSTEM,
                        data={"auto_reply": AutoReplyKind.CLOSING},
                    )
                sent = True
            except ValueError as exc:  # e.g. a closed reply window: resolve without it
                log.info("no closing message in conversation %s: %s", pk, exc)
        update_conversation(
            conversation,
            actor=None,
            status=ConversationStatus.RESOLVED,
            context={"via": "auto_resolve", "days": policy.days, "closing_sent": sent},
        )
    return True
