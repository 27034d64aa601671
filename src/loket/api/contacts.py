from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Router, Schema

from loket.api.conversations import _limit
from loket.inbox import selectors
from loket.inbox.models import Contact

router = Router(tags=["contacts"])


class IdentityOut(Schema):
    channel_id: int
    external_id: str


class ContactOut(Schema):
    id: int
    name: str
    email: str
    phone: str
    locale: str
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    created_at: dt.datetime


class ContactPage(Schema):
    items: list[ContactOut]
    next_cursor: str | None


def contact_out(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "locale": contact.locale,
        "attributes": contact.attributes,
        "identities": [
            {"channel_id": i.channel_id, "external_id": i.external_id}
            for i in contact.identities.all()
        ],
        "created_at": contact.created_at,
    }


@router.get("", response=ContactPage)
def list_contacts(request, q: str = "", cursor: str | None = None, limit: int = 25):
    queryset = selectors.contacts(request.membership, q).prefetch_related("identities")
    page = selectors.keyset_page(queryset, field="created_at", cursor=cursor, limit=_limit(limit))
    return {"items": [contact_out(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/{int:contact_id}", response=ContactOut)
def show_contact(request, contact_id: int):
    return contact_out(selectors.contact(request.membership, contact_id))
