"""A blocked contact's messages are stored, marked, change no status and notify nobody."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loket.inbox.models import (
    ContactIdentity,
    Conversation,
    ConversationStatus,
    Message,
    Notification,
    NotificationKind,
)
from loket.inbox.services.contacts import block_contact, merge_contacts
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.notifications import notify
from tests import factories
from tests.merging.builders import conversation_of


def blocked_sender(channel, owner, contact_id="spammer") -> Conversation:
    conversation = conversation_of(factories.inbound(channel, "Buy now", contact_id=contact_id))
    block_contact(conversation.contact, actor=owner)
    return conversation


def test_the_message_is_stored_and_marked(api_channel, owner):
    conversation = blocked_sender(api_channel, owner)
    result = factories.inbound(api_channel, "Buy more", contact_id="spammer", data={"x": 1})
    assert result.outcome == "created"
    assert result.conversation_id == conversation.pk
    message = Message.objects.get(pk=result.message_id)
    assert message.text == "Buy more"
    assert message.data == {"x": 1, "blocked": True}
    earlier = Message.objects.filter(conversation=conversation, kind="message")
    assert [m.data for m in earlier.exclude(pk=message.pk)] == [{}]  # marked from the block on
    # Blocking resolved the open conversation, and the new message did not reopen it.
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED


def test_a_resolved_conversation_is_not_reopened(
    api_channel, owner, domain_events, django_capture_on_commit_callbacks
):
    conversation = blocked_sender(api_channel, owner)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    before = Conversation.objects.get(pk=conversation.pk)
    domain_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        result = factories.inbound(api_channel, "Hello?", contact_id="spammer")

    after = Conversation.objects.get(pk=result.conversation_id)
    assert after.pk == conversation.pk
    assert (after.status, after.resolved_at) == (ConversationStatus.RESOLVED, before.resolved_at)
    assert after.waiting_since == before.waiting_since
    assert after.last_inbound_at == Message.objects.get(pk=result.message_id).created_at
    assert [e.name for e in domain_events] == ["message.created"]


def test_an_open_or_snoozed_conversation_keeps_its_status(api_channel, owner):
    conversation = blocked_sender(api_channel, owner)
    update_conversation(conversation, actor=owner, status=ConversationStatus.SNOOZED)
    factories.inbound(api_channel, "Wake up", contact_id="spammer")
    assert Conversation.objects.get(pk=conversation.pk).status == ConversationStatus.SNOOZED


def test_a_new_conversation_starts_resolved(api_channel, owner):
    conversation = blocked_sender(api_channel, owner)
    update_conversation(conversation, actor=owner, status=ConversationStatus.CLOSED)
    result = factories.inbound(api_channel, "Again", contact_id="spammer")
    created = Conversation.objects.get(pk=result.conversation_id)
    assert created.pk != conversation.pk
    assert created.status == ConversationStatus.RESOLVED
    assert created.resolved_at is not None and created.waiting_since is None


def test_a_contact_merged_into_a_blocked_one_is_blocked_too(api_channel, owner):
    blocked = blocked_sender(api_channel, owner).contact
    other = conversation_of(factories.inbound(api_channel, "Hi", contact_id="alias")).contact
    merge_contacts(other, blocked, actor=owner)
    # An identity still pointing at the merged contact (created by a delivery that raced the
    # merge) is followed to the contact it was merged into.
    ContactIdentity.objects.filter(external_id="alias").update(contact=other)
    result = factories.inbound(api_channel, "Spam", contact_id="alias")
    assert Message.objects.get(pk=result.message_id).data == {"blocked": True}


def test_a_blocked_contacts_message_notifies_nobody(api_channel, owner):
    agent = factories.agent(api_channel.workspace)
    conversation = blocked_sender(api_channel, owner)
    result = factories.inbound(api_channel, "Spam", contact_id="spammer")
    message = Message.objects.get(pk=result.message_id)
    for kind, about in [(NotificationKind.MESSAGE, message), (NotificationKind.MESSAGE, None)]:
        assert notify(agent, kind=kind, conversation=conversation, message=about) is None
    assert not Notification.objects.exists()
    # An agent's own action in that conversation still notifies.
    assigned = notify(agent, kind=NotificationKind.ASSIGNED, conversation=conversation, actor=owner)
    assert assigned is not None


def test_blocking_adds_no_query_to_ingest(api_channel, owner):
    """The hot path reads ``blocked_at`` in the query that finds the sender anyway. On
    PostgreSQL that query also stores a regular sender's message; a blocked sender's takes the
    one statement more that stores it without reopening anything."""
    factories.inbound(api_channel, "Hi", contact_id="regular")
    blocked_sender(api_channel, owner)
    counts = {}
    for contact_id in ("regular", "spammer"):
        with CaptureQueriesContext(connection) as queries:
            factories.inbound(api_channel, "Next", contact_id=contact_id)
        counts[contact_id] = len(queries)
    one_statement_path = 1 if connection.vendor == "postgresql" else 0
    assert counts["spammer"] == counts["regular"] + one_statement_path, counts


def test_an_old_resolved_conversation_is_continued_only_within_the_reopen_window(
    api_channel, owner, settings
):
    conversation = blocked_sender(api_channel, owner)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - dt.timedelta(days=settings.LOKET_REOPEN_WITHIN_DAYS + 1)
    )
    result = factories.inbound(api_channel, "Years later", contact_id="spammer")
    assert result.conversation_id != conversation.pk
    assert Conversation.objects.get(pk=result.conversation_id).status == "resolved"


def test_blocking_resolves_the_contacts_open_conversations(api_channel, owner):
    conversation = conversation_of(factories.inbound(api_channel, "Hi", contact_id="nagger"))
    assert conversation.status == ConversationStatus.OPEN
    block_contact(conversation.contact, actor=owner)
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    line = Message.objects.filter(conversation=conversation, kind="activity").last()
    assert line.data["status"] == "resolved"
    assert line.author_member_id == owner.pk
