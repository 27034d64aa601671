"""Canned replies over the API: the token's member sees the workspace's shared replies and their
own personal ones (loket.automation.canned has the rules); rendering one for a conversation
returns the text and sends nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.automation import canned
from loket.automation.models import CannedReply
from loket.inbox import selectors
from loket.tenancy.services import NotAllowed

router = Router(tags=["canned replies"])


class CannedReplyOut(Schema):
    id: int
    shortcut: str
    title: str
    language: str
    body: str
    shared: bool
    owner_id: int | None
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CannedReplyIn(Schema):
    shortcut: str
    title: str
    body: str
    language: str = ""
    # False: personal to the token's member; True: shared with the workspace (admins only).
    shared: bool = False


class CannedReplyPatch(Schema):
    shortcut: str | None = None
    title: str | None = None
    body: str | None = None
    language: str | None = None
    shared: bool | None = None


class RenderedOut(Schema):
    text: str
    unknown_variables: list[str]


def reply_out(reply: CannedReply) -> dict[str, Any]:
    return {
        "id": reply.pk,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "language": reply.language,
        "body": reply.body,
        "shared": reply.is_shared,
        "owner_id": reply.owner_id,
        "created_by_id": reply.created_by_id,
        "created_at": reply.created_at,
        "updated_at": reply.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    field = getattr(exc, "field", "")
    return ApiError(400, "invalid", f"{field}: {exc}" if field else str(exc))


# Declared before the /canned-replies/{reply_id} routes, so a walk over the routes in order
# renders a reply before it deletes it.
@router.post(
    "/conversations/{int:conversation_id}/canned-replies/{int:reply_id}/render",
    response=RenderedOut,
)
def render_canned_reply(request, conversation_id: int, reply_id: int):
    """The reply's text with its variables filled in for this conversation, as the token's
    member would write it. Nothing is sent; post the text as a message to send it."""
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    reply = canned.get_visible(member, reply_id)
    text, unknown = canned.render(reply, conversation, member)
    return {"text": text, "unknown_variables": unknown}


@router.get("/canned-replies", response=list[CannedReplyOut])
def list_canned_replies(request, language: str = "", q: str = ""):
    """Shared replies and the member's own; ``language`` keeps that language's and those for any
    language (its own first); ``q`` searches shortcut and title."""
    replies = canned.visible(request.membership, language=language or None, query=q)
    return [reply_out(reply) for reply in replies]


@router.post("/canned-replies", response={201: CannedReplyOut})
def create_canned_reply(request, data: CannedReplyIn):
    try:
        reply = canned.create_canned_reply(request.membership, **data.dict())
    except (canned.InvalidCannedReply, NotAllowed) as exc:
        raise _refused(exc) from exc
    return Status(201, reply_out(reply))


@router.get("/canned-replies/{int:reply_id}", response=CannedReplyOut)
def show_canned_reply(request, reply_id: int):
    return reply_out(canned.get_visible(request.membership, reply_id))


@router.patch("/canned-replies/{int:reply_id}", response=CannedReplyOut)
def update_canned_reply(request, reply_id: int, data: CannedReplyPatch):
    member = request.membership
    reply = canned.get_visible(member, reply_id)
    given = data.dict(exclude_unset=True)
    for name, value in given.items():
        if value is None:
            raise ApiError(400, "invalid", f"{name} cannot be null")
    try:
        reply = canned.update_canned_reply(reply, actor=member, **given)
    except (canned.InvalidCannedReply, NotAllowed) as exc:
        raise _refused(exc) from exc
    return reply_out(reply)


@router.delete("/canned-replies/{int:reply_id}", response={204: None})
def delete_canned_reply(request, reply_id: int):
    member = request.membership
    reply = canned.get_visible(member, reply_id)
    try:
        canned.delete_canned_reply(reply, actor=member)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)
