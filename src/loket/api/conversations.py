from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import Http404
from ninja import Query, Router, Schema, Status

from loket.api.main import ApiError
from loket.inbox import selectors
from loket.inbox.models import Conversation, Message, MessageKind
from loket.inbox.services import conversations as conversation_services
from loket.inbox.services import outbound

router = Router(tags=["conversations"])


class ContactRef(Schema):
    id: int
    name: str
    email: str
    phone: str


class ConversationOut(Schema):
    id: int
    number: int
    channel_id: int
    contact: ContactRef
    subject: str
    status: str
    priority: int
    assignee_id: int | None
    team_id: int | None
    labels: list[str]
    language: str
    snoozed_until: dt.datetime | None
    created_at: dt.datetime
    last_message_at: dt.datetime
    last_inbound_at: dt.datetime | None
    waiting_since: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    # SLA (loket.automation.sla): the policy and the running targets' due times; empty when
    # met, not running or paused (``sla_paused_at``: pending since then).
    sla_policy_id: int | None
    first_response_due_at: dt.datetime | None
    next_response_due_at: dt.datetime | None
    resolution_due_at: dt.datetime | None
    sla_paused_at: dt.datetime | None


class PredictedLabel(Schema):
    name: str
    score: float


class InsightOut(Schema):
    """What the offline enrichment estimates (loket.knowledge.enrichment): a coarse,
    lexicon-based sentiment and urgency, and labels suggested by the workspace's own label
    model (never applied by themselves). Read-only."""

    sentiment: Literal["negative", "neutral", "positive"]
    sentiment_score: float
    urgency: Literal["low", "normal", "high"]
    predicted_labels: list[PredictedLabel]
    updated_at: dt.datetime


class ConversationDetail(ConversationOut):
    insight: InsightOut | None = None  # None until the enrichment sweep has read it


class ConversationPage(Schema):
    items: list[ConversationOut]
    next_cursor: str | None


def conversation_out(conversation: Conversation) -> dict[str, Any]:
    contact = conversation.contact
    return {
        "id": conversation.pk,
        "number": conversation.number,
        "channel_id": conversation.channel_id,
        "contact": {"id": contact.pk, "name": contact.name, "email": contact.email,
                    "phone": contact.phone},
        "subject": conversation.subject,
        "status": conversation.status,
        "priority": conversation.priority,
        "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id,
        "labels": sorted(label.name for label in conversation.labels.all()),
        "language": conversation.language,
        "snoozed_until": conversation.snoozed_until,
        "created_at": conversation.created_at,
        "last_message_at": conversation.last_message_at,
        "last_inbound_at": conversation.last_inbound_at,
        "waiting_since": conversation.waiting_since,
        "first_response_at": conversation.first_response_at,
        "resolved_at": conversation.resolved_at,
        "sla_policy_id": conversation.sla_policy_id,
        "first_response_due_at": conversation.first_response_due_at,
        "next_response_due_at": conversation.next_response_due_at,
        "resolution_due_at": conversation.resolution_due_at,
        "sla_paused_at": conversation.sla_paused_at,
    }  # fmt: skip


class ConversationQuery(Schema):
    status: Literal["open", "pending", "snoozed", "resolved", "closed"] | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    channel_id: int | None = None
    label: str | None = None
    priority: int | None = None
    contact_id: int | None = None
    cursor: str | None = None
    limit: int = 25


def _limit(value: int) -> int:
    if not 1 <= value <= 100:
        raise ApiError(400, "invalid", "limit must be between 1 and 100")
    return value


@router.get("", response=ConversationPage)
def list_conversations(request, query: Query[ConversationQuery]):
    filters = selectors.ConversationFilters(**query.dict(exclude={"cursor", "limit"}))
    queryset = selectors.filter_conversations(request.membership, filters).prefetch_related(
        "labels"
    )
    page = selectors.keyset_page(
        queryset, field="last_message_at", cursor=query.cursor, limit=_limit(query.limit)
    )
    return {"items": [conversation_out(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/{int:conversation_id}", response=ConversationDetail)
def show_conversation(request, conversation_id: int):
    conversation = (
        selectors.conversations(request.membership)
        .select_related("insight")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise Http404("no such conversation")
    return {**conversation_out(conversation), "insight": _insight_out(conversation)}


def _insight_out(conversation: Conversation) -> dict[str, Any] | None:
    insight = getattr(conversation, "insight", None)  # loaded with it; None: not yet read
    if insight is None or not insight.sentiment:
        return None
    return {
        "sentiment": insight.sentiment,
        "sentiment_score": insight.sentiment_score,
        "urgency": insight.urgency or "normal",
        "predicted_labels": [
            {"name": str(item.get("name", "")), "score": float(item.get("score", 0))}
            for item in insight.predicted_labels or []
            if isinstance(item, dict)
        ],
        "updated_at": insight.updated_at,
    }


class ConversationPatch(Schema):
    status: Literal["open", "pending", "snoozed", "resolved", "closed"] | None = None
    snoozed_until: dt.datetime | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    priority: int | None = None
    labels: list[str] | None = None


@router.patch("/{int:conversation_id}", response=ConversationOut)
def update_conversation(request, conversation_id: int, data: ConversationPatch):
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    given = data.dict(exclude_unset=True)
    changes: dict[str, Any] = {}
    if "status" in given:
        if given["status"] is None:
            raise ApiError(400, "invalid", "status cannot be null")
        changes["status"] = given["status"]
    if "snoozed_until" in given:
        changes["snoozed_until"] = given["snoozed_until"]
    try:
        if "assignee_id" in given:
            changes["assignee"] = (
                selectors.member_of_workspace(member, given["assignee_id"])
                if given["assignee_id"] is not None
                else None
            )
        if "team_id" in given:
            changes["team"] = (
                selectors.team(member, given["team_id"]) if given["team_id"] is not None else None
            )
    except Http404 as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    if "priority" in given:
        changes["priority"] = given["priority"] or 0
    if "labels" in given:
        names = [n.strip() for n in (given["labels"] or []) if n and n.strip()]
        if any(len(name) > 64 for name in names):
            raise ApiError(400, "invalid", "a label is at most 64 characters")
        changes["labels"] = conversation_services.ensure_labels(
            member.workspace_id, sorted(set(names))
        )
    conversation_services.update_conversation(conversation, actor=member, **changes)
    return conversation_out(selectors.conversation(member, conversation_id))


# -- messages ---------------------------------------------------------------------------------
class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    status: str


class MessageOut(Schema):
    id: int
    conversation_id: int
    direction: str
    kind: str
    author_type: str
    author_id: int | None
    author_name: str
    text: str
    html: str
    status: str
    error: str
    data: dict[str, Any]
    attachments: list[AttachmentOut]
    sent_at: dt.datetime | None
    created_at: dt.datetime


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None


def message_out(message: Message) -> dict[str, Any]:
    if message.author_member_id:
        author_id, author_name = message.author_member_id, message.author_member.display_name
    elif message.author_contact_id:
        author_id, author_name = message.author_contact_id, message.author_contact.display_name
    else:
        author_id, author_name = None, ""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "author_type": message.author_type,
        "author_id": author_id,
        "author_name": author_name,
        "text": message.text,
        "html": message.html,
        "status": message.status,
        "error": message.error,
        "data": message.data,
        "attachments": [
            {"id": a.pk, "filename": a.filename, "content_type": a.content_type, "size": a.size,
             "status": a.status}
            for a in message.attachments.all()
        ],
        "sent_at": message.sent_at,
        "created_at": message.created_at,
    }  # fmt: skip


@router.get("/{int:conversation_id}/messages", response=MessagePage)
def list_messages(request, conversation_id: int, cursor: str | None = None, limit: int = 50):
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    page = selectors.keyset_page(
        selectors.messages(member, conversation),
        field="created_at",
        cursor=cursor,
        limit=_limit(limit),
        descending=False,
    )
    return {"items": [message_out(m) for m in page.items], "next_cursor": page.next_cursor}


class MessageIn(Schema):
    text: str
    kind: Literal["message", "note"] = "message"


@router.post("/{int:conversation_id}/messages", response={201: MessageOut})
def create_message(request, conversation_id: int, data: MessageIn):
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    if not data.text.strip():
        raise ApiError(400, "invalid", "text must not be empty")
    message = outbound.reply(
        conversation, author=member, text=data.text, kind=MessageKind(data.kind)
    )
    return Status(201, message_out(selectors.messages(member, conversation).get(pk=message.pk)))


@router.post("/{int:conversation_id}/messages/{int:message_id}/retry", response=MessageOut)
def retry_message(request, conversation_id: int, message_id: int):
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    message = selectors.messages(member, conversation).filter(pk=message_id).first()
    if message is None:
        raise Http404("no such message")
    try:
        outbound.retry(message)
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return message_out(selectors.messages(member, conversation).get(pk=message_id))
