"""Customer satisfaction (CSAT): a 1-5 rating and a comment per resolved conversation, given
once and changeable for LOKET_CSAT_CHANGE_HOURS (a misclick can be corrected, a rating cannot
be rewritten weeks later).

Every rating taken (the live chat's card, the survey page, an answer in the conversation)
also writes an activity line on the conversation (``data={"action": "csat_rated", ...}``), so
the agents' timeline shows it and the reports' sweep of new messages picks the conversation
up."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    SatisfactionRating,
)


class RatingRefused(ValueError):
    """The rating cannot be taken; the message says why (for the customer)."""


def _activity(conversation: Conversation, rating: SatisfactionRating, *, changed: bool) -> None:
    Message.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND,  # as every activity line
        kind=MessageKind.ACTIVITY,
        author_type=AuthorType.CONTACT,
        author_contact_id=conversation.contact_id,
        text="csat_rated",
        data={
            "action": "csat_rated",
            "rating": rating.rating,
            "changed": changed,
            "source": rating.source,
        },
        created_at=rating.updated_at,
    )


def rate(
    conversation: Conversation,
    rating: int,
    comment: str = "",
    *,
    source: str = "",
    require_resolved: bool = True,
):
    """Take the customer's rating (or their change of it). ``require_resolved=False``: also on
    a conversation their answer reopened (a survey answered together with a new question)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RatingRefused(_("Choose a rating from 1 to 5."))
    if require_resolved and conversation.status not in (
        ConversationStatus.RESOLVED,
        ConversationStatus.CLOSED,
    ):
        raise RatingRefused(_("This conversation is still going on."))
    comment = (comment or "").strip()[:2000]
    now = timezone.now()
    with transaction.atomic():
        existing = (
            SatisfactionRating.objects.select_for_update().filter(conversation=conversation).first()
        )
        if existing is None:
            given = SatisfactionRating.objects.create(
                workspace_id=conversation.workspace_id,
                conversation=conversation,
                rating=rating,
                comment=comment,
                source=source[:32],
                created_at=now,
                updated_at=now,
            )
            _activity(conversation, given, changed=False)
            return given
        if now - existing.created_at > dt.timedelta(hours=settings.LOKET_CSAT_CHANGE_HOURS):
            raise RatingRefused(_("This rating can no longer be changed."))
        if (existing.rating, existing.comment) == (rating, comment):
            return existing  # sent twice: nothing changed, no second line
        existing.rating, existing.comment, existing.updated_at = rating, comment, now
        existing.save(update_fields=["rating", "comment", "updated_at"])
        _activity(conversation, existing, changed=True)
        return existing
