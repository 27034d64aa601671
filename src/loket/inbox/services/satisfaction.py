"""Customer satisfaction (CSAT): a 1-5 rating and a comment per resolved conversation, given
once and changeable for LOKET_CSAT_CHANGE_HOURS (a misclick can be corrected, a rating cannot
be rewritten weeks later)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loket.inbox.models import Conversation, ConversationStatus, SatisfactionRating


class RatingRefused(ValueError):
    """The rating cannot be taken; the message says why (for the customer)."""


def rate(conversation: Conversation, rating: int, comment: str = "", *, source: str = ""):
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RatingRefused(_("Choose a rating from 1 to 5."))
    if conversation.status not in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
        raise RatingRefused(_("This conversation is still going on."))
    comment = (comment or "").strip()[:2000]
    now = timezone.now()
    with transaction.atomic():
        existing = (
            SatisfactionRating.objects.select_for_update().filter(conversation=conversation).first()
        )
        if existing is None:
            return SatisfactionRating.objects.create(
                workspace_id=conversation.workspace_id,
                conversation=conversation,
                rating=rating,
                comment=comment,
                source=source[:32],
                created_at=now,
                updated_at=now,
            )
        if now - existing.created_at > dt.timedelta(hours=settings.LOKET_CSAT_CHANGE_HOURS):
            raise RatingRefused(_("This rating can no longer be changed."))
        existing.rating, existing.comment, existing.updated_at = rating, comment, now
        existing.save(update_fields=["rating", "comment", "updated_at"])
        return existing
