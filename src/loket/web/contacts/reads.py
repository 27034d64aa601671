"""What the contacts pages read, always within the acting member's workspace.

The list pages through keysets only: by recent activity it walks the workspace's conversations
newest first (the ``conv_ws_recent`` index) and keeps each contact's latest one, so a page costs
the same however many contacts there are; "newest" walks the contacts themselves
(``contact_ws_recent``). Contacts without any conversation appear under "newest" only.
Measured on PostgreSQL with 100,000 contacts and 200,000 conversations: the unfiltered page's
query runs in under 1 ms. Text search (``icontains``) and the attribute filter have no index to
use and scan the workspace's contacts (~80 ms there); a GIN index on ``attributes`` would serve
the attribute filter if large workspaces need it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    TextField,
    prefetch_related_objects,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from loket.inbox import selectors
from loket.inbox.models import Contact, ContactIdentity, ContactMerge, Conversation
from loket.tenancy.models import Membership

PAGE_SIZE = 50
CONVERSATIONS_SHOWN = 50
MERGES_SHOWN = 20
CANDIDATES_SHOWN = 20

SORTS = {"recent": _("Recent activity"), "newest": _("Newest")}


@dataclass(frozen=True)
class ContactFilters:
    search: str = ""
    attribute: str = ""  # a custom attribute's name; with ``value``, its value (any case)
    value: str = ""
    blocked: bool = False
    sort: str = "recent"

    @classmethod
    def from_query(cls, query) -> ContactFilters:
        sort = query.get("sort", "recent")
        return cls(
            search=query.get("q", "").strip()[:200],
            attribute=query.get("attribute", "").strip()[:100],
            value=query.get("value", "").strip()[:200],
            blocked=query.get("blocked") == "1",
            sort=sort if sort in SORTS else "recent",
        )


@dataclass(frozen=True)
class ContactRow:
    contact: Contact
    activity_at: dt.datetime  # the latest message (recent) or when the contact was created


@dataclass(frozen=True)
class ContactPage:
    rows: list[ContactRow]
    next_cursor: str | None


def _identities_with_channels() -> Prefetch:
    return Prefetch(
        "identities", queryset=ContactIdentity.objects.select_related("channel").order_by("pk")
    )


def _filtered(queryset: QuerySet, filters: ContactFilters, prefix: str = "") -> QuerySet:
    """``queryset`` narrowed by the contact filters; ``prefix`` reaches the contact from it."""
    if filters.search:
        queryset = queryset.filter(
            Q(**{f"{prefix}name__icontains": filters.search})
            | Q(**{f"{prefix}email__icontains": filters.search})
            | Q(**{f"{prefix}phone__icontains": filters.search})
        )
    if filters.blocked:
        queryset = queryset.filter(**{f"{prefix}blocked_at__isnull": False})
    if filters.attribute:
        # The name is a parameter of a key transform, never part of a lookup path.
        queryset = queryset.filter(**{f"{prefix}attributes__has_key": filters.attribute})
        if filters.value:
            value = Cast(KeyTextTransform(filters.attribute, f"{prefix}attributes"), TextField())
            queryset = queryset.alias(attribute_value=value).filter(
                attribute_value__iexact=filters.value
            )
    return queryset


def contact_page(member: Membership, filters: ContactFilters, cursor: str | None) -> ContactPage:
    """One page of live contacts; raises selectors.BadCursor for a cursor we did not give."""
    if filters.sort == "newest":
        contacts = _filtered(selectors.contacts(member), filters)
        page = selectors.keyset_page(contacts, field="created_at", cursor=cursor, limit=PAGE_SIZE)
        rows = [ContactRow(contact, contact.created_at) for contact in page.items]
    else:
        # Each contact once, at their latest conversation: no newer one of theirs exists.
        newer = Conversation.objects.filter(contact_id=OuterRef("contact_id")).filter(
            Q(last_message_at__gt=OuterRef("last_message_at"))
            | Q(last_message_at=OuterRef("last_message_at"), pk__gt=OuterRef("pk"))
        )
        latest = (
            Conversation.objects.filter(
                workspace_id=member.workspace_id, contact__merged_into__isnull=True
            )
            .filter(~Exists(newer))
            .select_related("contact")
        )
        page = selectors.keyset_page(
            _filtered(latest, filters, "contact__"),
            field="last_message_at",
            cursor=cursor,
            limit=PAGE_SIZE,
        )
        rows = [ContactRow(c.contact, c.last_message_at) for c in page.items]
    prefetch_related_objects([row.contact for row in rows], _identities_with_channels())
    return ContactPage(rows, page.next_cursor)


def contact(member: Membership, pk: int) -> Contact:
    """A contact of the workspace (merged ones too), with identities and channels."""
    found = (
        Contact.objects.filter(workspace_id=member.workspace_id, pk=pk)
        .select_related("merged_into")
        .prefetch_related(_identities_with_channels())
        .first()
    )
    if found is None:
        raise Http404("no such contact")
    return found


def conversations_of(member: Membership, contact: Contact) -> list[Conversation]:
    """The contact's latest conversations on every channel (one more than shown, so the page
    can tell there are more)."""
    return list(
        selectors.conversations(member)
        .filter(contact=contact)
        .order_by("-last_message_at", "-pk")[: CONVERSATIONS_SHOWN + 1]
    )


def merges_of(member: Membership, contact: Contact) -> list[ContactMerge]:
    """The contact's merge history, both ways, newest first."""
    return list(
        ContactMerge.objects.filter(workspace_id=member.workspace_id)
        .filter(Q(source=contact) | Q(target=contact))
        .select_related("source", "target", "actor__user")
        .order_by("-created_at", "-pk")[:MERGES_SHOWN]
    )


def merge(member: Membership, pk: int) -> ContactMerge:
    found = (
        ContactMerge.objects.filter(workspace_id=member.workspace_id, pk=pk)
        .select_related("source", "target")
        .first()
    )
    if found is None:
        raise Http404("no such merge")
    return found


def merge_candidates(member: Membership, contact: Contact, search: str) -> list[Contact]:
    """Live contacts matching ``search`` that ``contact`` could absorb."""
    if not search.strip():
        return []
    return list(
        selectors.contacts(member, search)
        .exclude(pk=contact.pk)
        .prefetch_related(_identities_with_channels())
        .order_by("-created_at", "-pk")[:CANDIDATES_SHOWN]
    )
