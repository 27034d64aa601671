"""Merging two conversations of one contact, undoing it, and what is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loket.inbox.models import (
    Contact,
    Conversation,
    ConversationMerge,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services.conversations import (
    InvalidChange,
    ensure_labels,
    update_conversation,
)
from loket.inbox.services.merging import merge_conversations, undo_conversation_merge
from tests import factories
from tests.merging.builders import (
    activities,
    conversation_of,
    message_ids,
    note,
    reply,
    second_conversation,
    snapshot,
    written_ids,
)


@pytest.fixture
def pair(api_channel, owner):
    """Two open conversations of one contact; the older one answered, with a note."""
    older = conversation_of(factories.inbound(api_channel, "Where is my order?"))
    reply(older, owner, "Let me check")
    note(older, owner, "Carrier says Tuesday")
    factories.inbound(api_channel, "Any news?")
    newer = second_conversation(api_channel, text="Also: can I change the address?")
    older.refresh_from_db()
    return older, newer


def test_a_merge_moves_what_was_written_and_closes_the_source(
    pair, owner, domain_events, django_capture_on_commit_callbacks
):
    source, target = pair
    moved = written_ids(source)
    kept_in_target = written_ids(target)
    source_activities = message_ids(source, MessageKind.ACTIVITY)
    labels = ensure_labels(owner.workspace_id, ["billing", "vip"])
    update_conversation(source, actor=owner, labels=labels[:2])
    update_conversation(target, actor=owner, labels=labels[1:])
    source.refresh_from_db()
    domain_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        merge = merge_conversations(source, target, actor=owner)

    assert written_ids(target) == sorted(moved + kept_in_target)
    assert written_ids(source) == []
    # The source keeps its own history: its activity lines did not move.
    assert set(source_activities) <= set(message_ids(source, MessageKind.ACTIVITY))
    source.refresh_from_db()
    assert source.merged_into_id == target.pk
    assert source.status == ConversationStatus.CLOSED
    assert merge.moved["message_ids"] == moved
    assert merge.moved["source"]["status"] == ConversationStatus.OPEN
    assert merge.moved["labels_added"] == [labels[0].pk]
    assert sorted(target.labels.values_list("name", flat=True)) == ["billing", "vip"]
    assert merge.actor == owner and merge.undone_at is None

    assert activities(source)[-1] == {
        "action": "merged_into",
        "conversation_id": target.pk,
        "conversation_number": target.number,
        "messages": len(moved),
        "merge_id": merge.pk,
    }
    assert activities(target)[-1]["action"] == "merged_from"
    assert activities(target)[-1]["conversation_number"] == source.number
    updates = {e.conversation_id: e.changes for e in domain_events if e.name.endswith("updated")}
    assert updates[source.pk] == {"status": "closed", "merged_into_id": target.pk}
    assert updates[target.pk]["merged_from_id"] == source.pk
    assert {e.actor.id for e in domain_events} == {owner.pk}


def test_the_targets_timestamps_come_from_the_messages_it_now_holds(pair, owner):
    source, target = pair
    written = Message.objects.filter(
        conversation__in=[source, target], kind=MessageKind.MESSAGE
    ).order_by("created_at")
    inbound = [m.created_at for m in written if m.direction == Direction.INBOUND]
    outbound = [m.created_at for m in written if m.direction == Direction.OUTBOUND]

    merge_conversations(target, source, actor=owner)  # the newer one into the older one

    source.refresh_from_db()
    assert source.last_message_at == written.last().created_at
    assert source.last_inbound_at == max(inbound)
    assert source.last_outbound_at == max(outbound)
    assert source.first_response_at == min(outbound)
    # Waiting since the first customer message after the last reply.
    assert source.waiting_since == min(at for at in inbound if at > max(outbound))


def test_undo_puts_back_exactly_what_moved(
    pair, owner, domain_events, django_capture_on_commit_callbacks
):
    source, target = pair
    update_conversation(
        source,
        actor=owner,
        status=ConversationStatus.SNOOZED,
        snoozed_until=timezone.now() + dt.timedelta(days=2),
    )
    labels = ensure_labels(owner.workspace_id, ["billing"])
    update_conversation(source, actor=owner, labels=labels)
    before = {c.pk: (snapshot(c), written_ids(c)) for c in (source, target)}
    merge = merge_conversations(source, target, actor=owner)
    later = reply(target, owner, "Answered both")  # written in the target after the merge
    domain_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        undo_conversation_merge(merge, actor=owner)

    assert written_ids(source) == before[source.pk][1]
    assert written_ids(target) == sorted([*before[target.pk][1], later.pk])
    assert snapshot(source) == before[source.pk][0]
    target.refresh_from_db()
    assert list(target.labels.all()) == []
    assert target.last_outbound_at == later.created_at
    merge.refresh_from_db()
    assert merge.undone_at is not None
    assert activities(source)[-1]["action"] == "merge_undone"
    assert activities(target)[-1]["action"] == "unmerged"
    assert {e.conversation_id for e in domain_events} == {source.pk, target.pk}

    with pytest.raises(InvalidChange, match="already undone"):
        undo_conversation_merge(merge, actor=owner)
    assert written_ids(source) == before[source.pk][1]


def test_a_merge_and_its_undo_leave_both_conversations_as_they_were(pair, owner):
    source, target = pair
    before = {c.pk: (snapshot(c), written_ids(c)) for c in (source, target)}
    undo_conversation_merge(merge_conversations(source, target, actor=owner), actor=owner)
    assert {c.pk: (snapshot(c), written_ids(c)) for c in (source, target)} == before


def test_the_customers_next_message_continues_the_target(pair, owner, api_channel):
    source, target = pair
    merge_conversations(target, source, actor=owner)  # the newer (higher id) one is closed
    result = factories.inbound(api_channel, "Thanks!")
    assert result.conversation_id == source.pk


def test_conversations_of_different_contacts_are_not_merged(api_channel, owner):
    first = conversation_of(factories.inbound(api_channel, "Hi", contact_id="anna"))
    second = conversation_of(factories.inbound(api_channel, "Hello", contact_id="bob"))
    with pytest.raises(InvalidChange, match="same contact"):
        merge_conversations(first, second, actor=owner)
    assert not ConversationMerge.objects.exists()
    assert Conversation.objects.get(pk=first.pk).merged_into_id is None


def test_another_workspaces_conversation_or_member_is_refused(pair, owner):
    source, target = pair
    other_ws = factories.workspace("other")
    foreign = conversation_of(factories.inbound(factories.api_channel(other_ws), "Hi"))
    with pytest.raises(InvalidChange, match="different workspaces"):
        merge_conversations(source, foreign, actor=owner)
    with pytest.raises(InvalidChange, match="different workspaces"):
        merge_conversations(foreign, target, actor=owner)
    with pytest.raises(InvalidChange, match="another workspace"):
        merge_conversations(source, target, actor=factories.owner_of(other_ws))
    assert not ConversationMerge.objects.exists()
    assert written_ids(target) and written_ids(source)


def test_merging_into_itself_or_from_a_merged_conversation_is_refused(pair, owner):
    source, target = pair
    with pytest.raises(InvalidChange, match="itself"):
        merge_conversations(source, source, actor=owner)
    merge_conversations(source, target, actor=owner)
    with pytest.raises(InvalidChange, match="already merged"):
        merge_conversations(source, target, actor=owner)
    with pytest.raises(InvalidChange, match="was merged into another"):
        merge_conversations(target, source, actor=owner)


def test_undo_waits_for_a_later_merge_of_the_target_to_be_undone(api_channel, owner):
    first = conversation_of(factories.inbound(api_channel, "one"))
    second = second_conversation(api_channel, text="two")
    third = second_conversation(api_channel, text="three")
    contact = Contact.objects.get()
    assert {first.contact_id, second.contact_id, third.contact_id} == {contact.pk}
    earlier = merge_conversations(first, second, actor=owner)
    later = merge_conversations(second, third, actor=owner)
    with pytest.raises(InvalidChange, match="undo that first"):
        undo_conversation_merge(earlier, actor=owner)
    undo_conversation_merge(later, actor=owner)
    undo_conversation_merge(earlier, actor=owner)
    assert [len(written_ids(c)) for c in (first, second, third)] == [1, 1, 1]
