"""Editing, merging (and undoing), blocking contacts; suggested duplicates."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Contact, ContactIdentity, ContactMerge, Conversation, Message
from loket.inbox.services.contacts import (
    block_contact,
    merge_contacts,
    normalise_phone,
    suggested_duplicates,
    unblock_contact,
    undo_contact_merge,
    update_contact,
)
from loket.inbox.services.conversations import InvalidChange
from loket.inbox.services.ingest import receive
from tests import factories
from tests.merging.builders import activities


def customer(channel, external_id: str, **details) -> Contact:
    """A contact created the way every contact is: by their first message."""
    result = receive(
        channel,
        InboundMessage(
            external_id=f"m-{external_id}-{channel.pk}",
            contact=InboundContact(external_id, **details),
            text="Hello",
        ),
    )
    return Conversation.objects.get(pk=result.conversation_id).contact


def state(contact: Contact) -> dict:
    contact = Contact.objects.get(pk=contact.pk)
    return {
        "fields": (contact.name, contact.email, contact.phone, contact.locale),
        "attributes": contact.attributes,
        "merged_into": contact.merged_into_id,
        "identities": sorted(contact.identities.values_list("pk", flat=True)),
        "conversations": sorted(contact.conversations.values_list("pk", flat=True)),
    }


@pytest.fixture
def two_channels(workspace):
    return factories.api_channel(workspace, name="Web chat"), factories.api_channel(
        workspace, name="WhatsApp"
    )


@pytest.fixture
def same_person(two_channels):
    """One person who wrote on two channels: two contacts until merged."""
    chat, whatsapp = two_channels
    on_chat = customer(chat, "visitor-9", email="Anna@Example.com")
    on_whatsapp = customer(whatsapp, "31612345678", name="Anna de Vries", phone="+31 6 1234 5678")
    update_contact(on_chat, actor=None, attributes={"plan": "pro", "city": "Utrecht"})
    update_contact(on_whatsapp, actor=None, attributes={"city": "Amsterdam"})
    return on_chat, on_whatsapp


# -- update and block --------------------------------------------------------------------------
def test_update_changes_only_what_is_given(same_person, owner):
    contact, _ = same_person
    update_contact(contact, actor=owner, name="  Anna  ", locale="nl")
    contact.refresh_from_db()
    assert (contact.name, contact.email, contact.locale) == ("Anna", "Anna@Example.com", "nl")
    assert contact.attributes == {"plan": "pro", "city": "Utrecht"}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"email": "not an address"}, "valid email"),
        ({"name": "x" * 201}, "longer than 200"),
        ({"attributes": ["a", "list"]}, "attributes"),
    ],
)
def test_invalid_changes_are_refused(same_person, owner, changes, error):
    contact, _ = same_person
    before = state(contact)
    with pytest.raises(InvalidChange, match=error):
        update_contact(contact, actor=owner, **changes)
    assert state(contact) == before


def test_another_workspaces_member_cannot_change_a_contact(same_person):
    contact, _ = same_person
    stranger = factories.owner_of(factories.workspace("other"))
    for change in (
        lambda: update_contact(contact, actor=stranger, name="Mallory"),
        lambda: block_contact(contact, actor=stranger),
        lambda: merge_contacts(same_person[1], contact, actor=stranger),
    ):
        with pytest.raises(InvalidChange, match="another workspace"):
            change()
    contact.refresh_from_db()
    assert contact.name == "" and contact.blocked_at is None
    assert not ContactMerge.objects.exists()


def test_block_keeps_the_first_time_and_unblock_clears_it(same_person, owner):
    contact, _ = same_person
    block_contact(contact, actor=owner)
    first = Contact.objects.get(pk=contact.pk).blocked_at
    assert first is not None
    block_contact(Contact.objects.get(pk=contact.pk), actor=owner)
    assert Contact.objects.get(pk=contact.pk).blocked_at == first
    unblock_contact(contact, actor=owner)
    assert Contact.objects.get(pk=contact.pk).blocked_at is None


# -- merge and undo ----------------------------------------------------------------------------
def test_a_merge_moves_identities_and_conversations_and_fills_the_gaps(
    same_person, owner, domain_events, django_capture_on_commit_callbacks
):
    source, target = same_person  # the chat visitor becomes part of the WhatsApp contact
    moved = state(source)
    kept = state(target)
    domain_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        merge = merge_contacts(source, target, actor=owner)

    after = state(target)
    assert after["identities"] == sorted(moved["identities"] + kept["identities"])
    assert after["conversations"] == sorted(moved["conversations"] + kept["conversations"])
    # Empty fields filled from the source; what the target knew stays.
    assert after["fields"] == ("Anna de Vries", "Anna@Example.com", "+31 6 1234 5678", "")
    assert after["attributes"] == {"city": "Amsterdam", "plan": "pro"}
    assert state(source)["merged_into"] == target.pk
    assert state(source)["identities"] == [] and state(source)["conversations"] == []
    assert merge.moved == {
        "identity_ids": moved["identities"],
        "conversation_ids": moved["conversations"],
        "filled": {"email": "Anna@Example.com"},
        "attributes_added": {"plan": "pro"},
    }
    [moved_conversation] = moved["conversations"]
    line = activities(Conversation.objects.get(pk=moved_conversation))[-1]
    assert line["action"] == "contact_merged"
    assert (line["contact_id"], line["from_contact_id"]) == (target.pk, source.pk)
    assert [(e.name, e.conversation_id, e.changes) for e in domain_events] == [
        ("conversation.updated", moved_conversation, {"contact_id": target.pk})
    ]


def test_after_a_merge_both_identities_reach_the_same_contact(same_person, two_channels, owner):
    source, target = same_person
    chat, _ = two_channels
    merge_contacts(source, target, actor=owner)
    result = factories.inbound(chat, "It's me again", contact_id="visitor-9")
    assert Conversation.objects.get(pk=result.conversation_id).contact_id == target.pk


def test_undo_puts_back_exactly_what_moved(same_person, owner):
    source, target = same_person
    before = {c.pk: state(c) for c in same_person}
    merge = merge_contacts(source, target, actor=owner)

    undo_contact_merge(merge, actor=owner)

    assert {c.pk: state(c) for c in same_person} == before
    merge.refresh_from_db()
    assert merge.undone_at is not None
    [conversation] = before[source.pk]["conversations"]
    assert activities(Conversation.objects.get(pk=conversation))[-1]["action"] == (
        "contact_unmerged"
    )
    with pytest.raises(InvalidChange, match="already undone"):
        undo_contact_merge(merge, actor=owner)
    assert {c.pk: state(c) for c in same_person} == before


def test_undo_keeps_what_an_agent_changed_since(same_person, owner):
    source, target = same_person
    merge = merge_contacts(source, target, actor=owner)
    update_contact(
        Contact.objects.get(pk=target.pk),
        actor=owner,
        email="anna@work.example",
        attributes={"city": "Amsterdam", "plan": "enterprise"},
    )
    undo_contact_merge(merge, actor=owner)
    target.refresh_from_db()
    assert target.email == "anna@work.example"
    assert target.attributes == {"city": "Amsterdam", "plan": "enterprise"}


def test_merges_that_cannot_be_done_are_refused(same_person, owner, workspace):
    source, target = same_person
    foreign = customer(factories.api_channel(factories.workspace("other")), "x")
    for args, error in [
        ((source, source), "itself"),
        ((source, foreign), "different workspaces"),
        ((foreign, target), "different workspaces"),
    ]:
        with pytest.raises(InvalidChange, match=error):
            merge_contacts(*args, actor=owner)
    merge = merge_contacts(source, target, actor=owner)
    with pytest.raises(InvalidChange, match="already merged"):
        merge_contacts(source, target, actor=owner)
    with pytest.raises(InvalidChange, match="was merged into another"):
        merge_contacts(target, source, actor=owner)

    third = customer(factories.api_channel(workspace, name="Mail"), "anna@example.com")
    later = merge_contacts(target, third, actor=owner)
    with pytest.raises(InvalidChange, match="undo that first"):
        undo_contact_merge(merge, actor=owner)
    undo_contact_merge(later, actor=owner)
    undo_contact_merge(merge, actor=owner)
    assert ContactMerge.objects.filter(undone_at__isnull=True).count() == 0


def test_messages_keep_the_contact_they_arrived_under(same_person, owner):
    source, target = same_person
    merge_contacts(source, target, actor=owner)
    assert Message.objects.filter(author_contact=source).count() == 1


# -- suggested duplicates ----------------------------------------------------------------------
def test_same_email_ignoring_case_or_same_phone_digits_are_suggested(
    workspace, two_channels, owner
):
    chat, whatsapp = two_channels
    mail = factories.api_channel(workspace, name="Mail")
    anna_chat = customer(chat, "v1", email="Anna@Example.com")
    anna_mail = customer(mail, "anna@example.com", email="anna@example.com", phone="0031612345678")
    anna_whatsapp = customer(whatsapp, "31612345678", phone="+31 (6) 1234-5678")
    bob = customer(chat, "v2", email="bob@example.com", phone="+31 6 9999 0000")
    customer(mail, "ext", phone="12-34")  # too short to be evidence
    customer(chat, "v3", phone="1234")
    merged = customer(chat, "v4", email="ANNA@example.com")
    merge_contacts(merged, bob, actor=owner)  # a merged contact is no longer a candidate
    other = factories.api_channel(factories.workspace("other"))
    customer(other, "o1", email="anna@example.com")  # another workspace is never evidence

    pairs = suggested_duplicates(workspace.pk)

    found = {
        (p.first.pk, p.second.pk): sorted((e.field, e.value) for e in p.evidence) for p in pairs
    }
    assert found == {
        (anna_chat.pk, anna_mail.pk): [("email", "anna@example.com")],
        (anna_mail.pk, anna_whatsapp.pk): [("phone", "31612345678")],
    }
    assert pairs[0].second == anna_whatsapp  # the newest duplicate first


def test_one_pair_with_both_pieces_of_evidence(workspace, two_channels):
    chat, whatsapp = two_channels
    first = customer(chat, "v1", email="a@example.com", phone="+31 6 1234 5678")
    second = customer(whatsapp, "w1", email="A@example.com", phone="0031612345678")
    [pair] = suggested_duplicates(workspace.pk)
    assert (pair.first, pair.second) == (first, second)
    assert sorted(e.field for e in pair.evidence) == ["email", "phone"]


def test_the_query_count_does_not_grow_with_the_number_of_duplicates(workspace, two_channels):
    chat, whatsapp = two_channels
    counts = []
    for batch in (1, 6):
        for i in range(batch):
            customer(chat, f"c{batch}-{i}", email=f"p{batch}-{i}@example.com")
            customer(whatsapp, f"w{batch}-{i}", email=f"P{batch}-{i}@example.com")
        with CaptureQueriesContext(connection) as queries:
            pairs = suggested_duplicates(workspace.pk)
            for pair in pairs:
                [i.channel.name for c in (pair.first, pair.second) for i in c.identities.all()]
        counts.append(len(queries))
    assert len(pairs) == 7
    assert counts[0] == counts[1], counts


def test_the_limit_bounds_the_pairs(workspace, two_channels):
    chat, whatsapp = two_channels
    for i in range(5):
        customer(chat, f"c{i}", email=f"p{i}@example.com")
        customer(whatsapp, f"w{i}", email=f"p{i}@example.com")
    assert len(suggested_duplicates(workspace.pk, limit=3)) == 3


@pytest.mark.parametrize(
    ("typed", "digits"),
    [("+31 6 1234 5678", "31612345678"), ("0031-6-12345678", "31612345678"), ("", "")],
)
def test_phone_numbers_compare_by_their_digits(typed, digits):
    assert normalise_phone(typed) == digits


def test_identities_move_with_the_merge(same_person, owner):
    source, target = same_person
    identity = ContactIdentity.objects.get(contact=source)
    merge_contacts(source, target, actor=owner)
    identity.refresh_from_db()
    assert identity.contact_id == target.pk
