"""Background sweeps over the customer messages (language detection, enrichment): each reads the
messages after its ``SweepMark`` in id order, so nothing runs in the ingest's transaction.

Ids are handed out when a message is inserted, not when its transaction commits: a message
whose transaction commits a moment after one with a higher id would be passed by a sweep that
already read the higher one. A sweep therefore reads only messages that have settled —
created at least ``LOKET_SWEEP_SETTLE_SECONDS`` ago (ingest's transactions take milliseconds).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from loket.inbox.models import AuthorType, Direction, Message, MessageKind


def customer_messages():
    """What customers wrote (not activity lines, notes, replies or bot messages)."""
    return Message.objects.filter(
        direction=Direction.INBOUND, kind=MessageKind.MESSAGE, author_type=AuthorType.CONTACT
    )


def settled_customer_messages(after_id: int):
    """Customer messages after ``after_id`` that have settled, in id order."""
    before = timezone.now() - dt.timedelta(seconds=settings.LOKET_SWEEP_SETTLE_SECONDS)
    return customer_messages().filter(pk__gt=after_id, created_at__lte=before).order_by("pk")
