"""Auto-replies over the API: the workspace's greeting, away and closing message, and any
channel's own (loket.automation.autoreplies has the rules). Reading is for every member,
changing for admins."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from ninja import Router, Schema

from loket.api.main import ApiError
from loket.automation import autoreplies
from loket.automation.models import AutoReply
from loket.inbox import selectors
from loket.tenancy.services import NotAllowed

router = Router(tags=["auto-replies"])


class AutoReplyOut(Schema):
    id: int
    kind: str
    channel_id: int | None
    enabled: bool
    body: str
    days: int | None
    updated_at: dt.datetime


class AutoReplyIn(Schema):
    kind: str  # greeting | away | closing
    body: str = ""
    enabled: bool = True
    # closing only: resolve conversations pending on the customer this many days (1-90).
    days: int | None = None
    # Empty: for every channel of the workspace; else that channel's own, which wins.
    channel_id: int | None = None


def _out(reply: AutoReply) -> dict:
    return {
        "id": reply.pk,
        "kind": reply.kind,
        "channel_id": reply.channel_id,
        "enabled": reply.enabled,
        "body": reply.body,
        "days": reply.days,
        "updated_at": reply.updated_at,
    }


@router.get("", response=list[AutoReplyOut])
def list_auto_replies(request):
    member = request.membership
    found = AutoReply.objects.filter(workspace_id=member.workspace_id).order_by("kind", "pk")
    return [_out(reply) for reply in found]


@router.put("", response=AutoReplyOut)
def set_auto_reply(request, data: AutoReplyIn):
    """Create or replace the auto-reply of ``kind`` (``greeting``, ``away`` or ``closing``, the
    last with ``days``: resolve what waited that long on the customer) for the workspace or, with
    ``channel_id``, that channel."""
    member = request.membership
    try:
        channel = selectors.channel(member, data.channel_id) if data.channel_id else None
    except Http404 as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    try:
        reply = autoreplies.configure(
            member.workspace,
            data.kind,
            body=data.body,
            enabled=data.enabled,
            channel=channel,
            actor=member,
            days=data.days,
        )
    except NotAllowed as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    except autoreplies.InvalidAutoReply as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    return _out(reply)
