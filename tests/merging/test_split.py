"""Moving one customer message into a new conversation."""

from __future__ import annotations

import pytest

from loket.inbox.models import Conversation, ConversationStatus, Message, MessageKind
from loket.inbox.services.conversations import InvalidChange
from loket.inbox.services.merging import split_message
from loket.tenancy.models import Workspace
from tests import factories
from tests.merging.builders import activities, conversation_of, note, reply, written_ids


@pytest.fixture
def thread(api_channel, owner):
    """A conversation: question, answer, an unrelated second question, a note."""
    first = factories.inbound(api_channel, "Where is my order?")
    conversation = conversation_of(first)
    answer = reply(conversation, owner, "Tuesday")
    second = factories.inbound(api_channel, "Unrelated: do you ship to Belgium?")
    remark = note(conversation, owner, "Ask logistics")
    messages = Message.objects.in_bulk([first.message_id, second.message_id])
    return conversation, messages[first.message_id], answer, messages[second.message_id], remark


def test_only_that_message_moves_into_a_new_conversation(
    thread, owner, domain_events, django_capture_on_commit_callbacks
):
    conversation, question, answer, unrelated, remark = thread
    number = Workspace.objects.get(pk=owner.workspace_id).next_conversation_number
    domain_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        created = split_message(unrelated, actor=owner)

    assert created.number == number
    assert (created.contact_id, created.channel_id) == (
        conversation.contact_id,
        conversation.channel_id,
    )
    assert created.status == ConversationStatus.OPEN
    assert written_ids(created) == [unrelated.pk]
    assert written_ids(conversation) == sorted([question.pk, answer.pk, remark.pk])
    # The new conversation's clock is that message's; the customer waits since they wrote it.
    assert created.last_message_at == unrelated.created_at
    assert created.last_inbound_at == unrelated.created_at
    assert created.waiting_since == unrelated.created_at
    assert created.first_response_at is None
    conversation.refresh_from_db()
    assert conversation.last_inbound_at == question.created_at
    assert conversation.waiting_since is None  # the answer came after the question

    assert activities(conversation)[-1] == {
        "action": "message_split",
        "conversation_id": created.pk,
        "conversation_number": created.number,
        "message_id": unrelated.pk,
    }
    assert activities(created)[-1]["action"] == "split_from"
    assert activities(created)[-1]["conversation_number"] == conversation.number
    names = {(e.name, e.conversation_id) for e in domain_events}
    assert names == {
        ("conversation.created", created.pk),
        ("conversation.updated", conversation.pk),
    }


def test_the_next_message_continues_the_conversation_with_the_latest_one(
    thread, owner, api_channel
):
    conversation, question, *_ = thread
    split_message(question, actor=owner)  # an earlier message: the original keeps the latest
    assert factories.inbound(api_channel, "Thanks").conversation_id == conversation.pk

    latest = Message.objects.get(pk=factories.inbound(api_channel, "New topic").message_id)
    created = split_message(latest, actor=owner)
    assert factories.inbound(api_channel, "About that").conversation_id == created.pk


def test_only_a_customer_message_that_is_not_the_only_one_can_be_split(thread, owner):
    conversation, question, answer, unrelated, remark = thread
    for message in (answer, remark):
        with pytest.raises(InvalidChange, match="customer's message"):
            split_message(message, actor=owner)
    split_message(unrelated, actor=owner)
    with pytest.raises(InvalidChange, match="only customer message"):
        split_message(question, actor=owner)
    assert Conversation.objects.count() == 2
    assert Message.objects.get(pk=question.pk).conversation_id == conversation.pk


def test_another_workspaces_member_cannot_split(thread):
    *_, unrelated, _ = thread
    stranger = factories.owner_of(factories.workspace("other"))
    with pytest.raises(InvalidChange, match="another workspace"):
        split_message(unrelated, actor=stranger)
    assert Message.objects.get(pk=unrelated.pk).kind == MessageKind.MESSAGE
    assert Conversation.objects.count() == 1
