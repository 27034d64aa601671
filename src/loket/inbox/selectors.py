"""Reads of the inbox, always scoped to the acting membership's workspace.

An id from another workspace is indistinguishable from an id that does not exist (Http404).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from loket.inbox.models import Channel, Contact, Conversation, InboundEvent, Message
from loket.tenancy.models import Membership, Team


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None


def encode_cursor(at: dt.datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.split("|")
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:  # the API only gives out aware times
            raise ValueError("naive time")
        return when, int(pk)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the cursor is not one this API gave out") from exc


def keyset_page(
    queryset: QuerySet, *, field: str, cursor: str | None, limit: int, descending: bool = True
) -> Page:
    """One page in (field, id) order; the query count does not grow with the page number."""
    if cursor:
        at, pk = decode_cursor(cursor)
        if descending:
            queryset = queryset.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk}))
        else:
            queryset = queryset.filter(Q(**{f"{field}__gt": at}) | Q(**{field: at, "pk__gt": pk}))
    order = (f"-{field}", "-pk") if descending else (field, "pk")
    rows = list(queryset.order_by(*order)[: limit + 1])
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(getattr(last, field), last.pk)
    return Page(items, next_cursor)


def _scoped(model, member: Membership) -> QuerySet:
    return model.objects.filter(workspace_id=member.workspace_id)


def _get(queryset: QuerySet, pk: int, what: str):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404(f"no such {what}")
    return obj


# -- channels ---------------------------------------------------------------------------------
def channels(member: Membership) -> QuerySet[Channel]:
    return _scoped(Channel, member).order_by("name", "pk")


def channel(member: Membership, pk: int) -> Channel:
    return _get(_scoped(Channel, member), pk, "channel")


# -- conversations ----------------------------------------------------------------------------
def conversations(member: Membership) -> QuerySet[Conversation]:
    return _scoped(Conversation, member).select_related(
        "contact", "channel", "assignee__user", "team"
    )


def conversation(member: Membership, pk: int) -> Conversation:
    return _get(conversations(member), pk, "conversation")


@dataclass(frozen=True)
class ConversationFilters:
    status: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    channel_id: int | None = None
    label: str | None = None
    priority: int | None = None
    contact_id: int | None = None


def filter_conversations(member: Membership, filters: ConversationFilters) -> QuerySet:
    queryset = conversations(member)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.unassigned:
        queryset = queryset.filter(assignee__isnull=True)
    elif filters.assignee_id is not None:
        queryset = queryset.filter(assignee_id=filters.assignee_id)
    if filters.team_id is not None:
        queryset = queryset.filter(team_id=filters.team_id)
    if filters.channel_id is not None:
        queryset = queryset.filter(channel_id=filters.channel_id)
    if filters.priority is not None:
        queryset = queryset.filter(priority=filters.priority)
    if filters.contact_id is not None:
        queryset = queryset.filter(contact_id=filters.contact_id)
    if filters.label:
        queryset = queryset.filter(labels__name=filters.label)
    return queryset


# -- messages ---------------------------------------------------------------------------------
def messages(member: Membership, conversation: Conversation) -> QuerySet[Message]:
    return (
        _scoped(Message, member)
        .filter(conversation=conversation)
        .select_related("author_member__user", "author_contact")
        .prefetch_related("attachments")
    )


def message(member: Membership, pk: int) -> Message:
    return _get(_scoped(Message, member).select_related("conversation"), pk, "message")


# -- contacts ---------------------------------------------------------------------------------
def contacts(member: Membership, search: str = "") -> QuerySet[Contact]:
    queryset = _scoped(Contact, member).filter(merged_into__isnull=True)
    search = search.strip()
    if search:
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(email__icontains=search) | Q(phone__icontains=search)
        )
    return queryset


def contact(member: Membership, pk: int) -> Contact:
    return _get(_scoped(Contact, member).prefetch_related("identities"), pk, "contact")


# -- related look-ups used when changing a conversation ---------------------------------------
def member_of_workspace(member: Membership, pk: int) -> Membership:
    return _get(_scoped(Membership, member).select_related("user"), pk, "member")


def team(member: Membership, pk: int) -> Team:
    return _get(_scoped(Team, member), pk, "team")


# -- inbound journal --------------------------------------------------------------------------
def inbound_events(member: Membership, status: str | None = None) -> QuerySet[InboundEvent]:
    queryset = _scoped(InboundEvent, member).defer("payload")
    return queryset.filter(status=status) if status else queryset


def inbound_event(member: Membership, pk: int) -> InboundEvent:
    return _get(_scoped(InboundEvent, member), pk, "inbound event")
