"""Fixtures and builders for the canned reply tests: members of every kind in workspace "acme",
and a conversation whose contact has every detail the variables read."""

from __future__ import annotations

import pytest

from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Contact, Conversation
from loket.inbox.services.ingest import receive
from loket.tenancy.models import Membership, Role
from loket.tenancy.services import add_member
from tests import factories


@pytest.fixture
def admin(workspace) -> Membership:
    return add_member(workspace, factories.user("admin@acme.example", "Ada Admin"), role=Role.ADMIN)


@pytest.fixture
def agent(workspace) -> Membership:
    return add_member(
        workspace, factories.user("agent@acme.example", "Abe van Agent"), role=Role.AGENT
    )


@pytest.fixture
def other_agent(workspace) -> Membership:
    return add_member(workspace, factories.user("olga@acme.example", "Olga Other"), role=Role.AGENT)


def conversation_with(
    channel,
    *,
    contact_id: str = "c-1",
    name: str = "Jane Q. Doe",
    email: str = "jane@example.com",
    phone: str = "+31 6 1234 5678",
    locale: str = "",
    subject: str = "Where is my parcel?",
    attributes: dict | None = None,
    custom: dict | None = None,
    language: str = "",
) -> Conversation:
    """A conversation started by a customer message through the ingest service; the contact's
    attributes and the conversation's custom attributes and language set as given."""
    result = receive(
        channel,
        InboundMessage(
            external_id=f"m-{contact_id}",
            contact=InboundContact(contact_id, name=name, email=email, phone=phone, locale=locale),
            text="Hello",
            subject=subject,
        ),
    )
    conversation = Conversation.objects.select_related("contact").get(pk=result.conversation_id)
    if attributes is not None:
        Contact.objects.filter(pk=conversation.contact_id).update(attributes=attributes)
    changes = {}
    if custom is not None:
        changes["custom_attributes"] = custom
    if language:
        changes["language"] = language
    if changes:
        Conversation.objects.filter(pk=conversation.pk).update(**changes)
    return Conversation.objects.select_related("contact").get(pk=conversation.pk)


@pytest.fixture
def conversation(api_channel) -> Conversation:
    return conversation_with(
        api_channel,
        attributes={"plan": "Gold", "order_id": 1234, "vip": True, "tags": ["a", "b"]},
        custom={"order": "A-77", "nested": {"secret": "x"}},
    )
