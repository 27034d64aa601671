"""The inbound journal for operators: failed deliveries with their error, and replay."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Router, Schema

from loket.api.conversations import _limit
from loket.api.main import ApiError
from loket.inbox import selectors
from loket.inbox.models import InboundEvent
from loket.inbox.services import journal

router = Router(tags=["inbound journal"])


class InboundEventOut(Schema):
    id: int
    channel_id: int
    status: str
    error: str
    attempts: int
    result: dict[str, Any]
    received_at: dt.datetime
    processed_at: dt.datetime | None


class InboundEventPage(Schema):
    items: list[InboundEventOut]
    next_cursor: str | None


def event_out(event: InboundEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "channel_id": event.channel_id,
        "status": event.status,
        "error": event.error,
        "attempts": event.attempts,
        "result": event.result,
        "received_at": event.received_at,
        "processed_at": event.processed_at,
    }


def _admin(request):
    if not request.membership.is_admin:
        raise ApiError(403, "forbidden", "only owners and admins can read the inbound journal")
    return request.membership


@router.get("", response=InboundEventPage)
def list_events(
    request,
    status: Literal["received", "processed", "duplicate", "ignored", "failed"] | None = None,
    cursor: str | None = None,
    limit: int = 25,
):
    member = _admin(request)
    page = selectors.keyset_page(
        selectors.inbound_events(member, status), field="received_at", cursor=cursor,
        limit=_limit(limit),
    )  # fmt: skip
    return {"items": [event_out(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/{int:event_id}", response=InboundEventOut)
def show_event(request, event_id: int):
    return event_out(selectors.inbound_event(_admin(request), event_id))


@router.post("/{int:event_id}/replay", response=InboundEventOut)
def replay_event(request, event_id: int):
    event = selectors.inbound_event(_admin(request), event_id)
    if event.status != "failed":
        raise ApiError(409, "conflict", "only failed deliveries can be replayed")
    return event_out(journal.replay_now(event))
