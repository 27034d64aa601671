"""What customers do to stored messages (react, edit, delete, reply to one) reaches the message
it is about, is announced as message.updated, survives redelivery, and shows in the timeline."""

from __future__ import annotations

import pytest
from django.test import TestCase

from loket import events
from loket.inbox.items import (
    InboundContact,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    Reaction,
)
from loket.inbox.models import Message
from loket.inbox.services import journal, outbound
from loket.inbox.services.ingest import receive

pytestmark = pytest.mark.django_db

CUSTOMER = InboundContact("cust-1", name="Sanne de Vries")


def customer_message(channel, external_id="in-1", text="Is my order on its way?", **kw):
    return receive(channel, InboundMessage(external_id, CUSTOMER, text=text, **kw))


def test_a_reaction_lands_on_our_reply_and_a_new_one_replaces_it(api_channel, owner):
    first = customer_message(api_channel)
    reply = outbound.reply(
        Message.objects.get(pk=first.message_id).conversation, author=owner, text="It ships today"
    )
    Message.objects.filter(pk=reply.pk).update(external_id="out-9", status="sent")

    with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
        result = receive(api_channel, Reaction("out-9", CUSTOMER, "👍"))
    assert result.outcome == "updated" and result.message_id == reply.pk
    assert Message.objects.get(pk=reply.pk).data["reactions"] == {"cust-1": "👍"}
    assert len(callbacks) == 1

    assert receive(api_channel, Reaction("out-9", CUSTOMER, "👍")).outcome == "duplicate"
    receive(api_channel, Reaction("out-9", CUSTOMER, "❤️"))
    assert Message.objects.get(pk=reply.pk).data["reactions"] == {"cust-1": "❤️"}
    receive(api_channel, Reaction("out-9", CUSTOMER, ""))  # removed
    assert Message.objects.get(pk=reply.pk).data["reactions"] == {}


def test_message_updated_is_announced_after_commit(api_channel, settings):
    settings.LOKET_EVENT_SUBSCRIBERS = ["tests.inbox.test_message_changes.remember"]
    events._subscribers.cache_clear()
    REMEMBERED.clear()
    try:
        stored = customer_message(api_channel)
        with TestCase.captureOnCommitCallbacks(execute=True):
            receive(api_channel, Reaction("in-1", InboundContact("cust-1"), "😮"))
        seen = [e for e in REMEMBERED if e.name == "message.updated"]
    finally:
        events._subscribers.cache_clear()
    assert len(seen) == 1
    assert seen[0].message_id == stored.message_id
    assert seen[0].changes == {"reactions": {"cust-1": "😮"}}


REMEMBERED: list = []


def remember(event) -> None:
    REMEMBERED.append(event)


def test_a_reaction_to_a_message_loket_never_saw_is_ignored_not_retried(api_channel):
    result = receive(api_channel, Reaction("from-before-loket", CUSTOMER, "👍"))
    assert result.outcome == "target_unknown"
    assert not result.needs_retry


def test_an_edit_keeps_the_earlier_text_for_the_agent(api_channel):
    stored = customer_message(api_channel, text="My order number is 10425")
    assert (
        receive(api_channel, MessageEdit("in-1", "My order number is 10452")).outcome == "updated"
    )
    message = Message.objects.get(pk=stored.message_id)
    assert message.text == "My order number is 10452"
    assert message.data["edited"]["previous"] == ["My order number is 10425"]
    # The same edit delivered again changes nothing.
    assert receive(api_channel, MessageEdit("in-1", "My order number is 10452")).outcome == (
        "duplicate"
    )
    assert Message.objects.get(pk=stored.message_id).data["edited"]["previous"] == [
        "My order number is 10425"
    ]


def test_a_deleted_message_stays_for_the_agent_marked(api_channel):
    stored = customer_message(api_channel, text="oops, wrong chat")
    assert receive(api_channel, MessageDeletion("in-1")).outcome == "updated"
    message = Message.objects.get(pk=stored.message_id)
    assert message.text == "oops, wrong chat"
    assert message.data["deleted_at"]
    assert receive(api_channel, MessageDeletion("in-1")).outcome == "duplicate"


def test_only_the_customers_own_messages_can_be_edited_or_deleted(api_channel, owner):
    first = customer_message(api_channel)
    reply = outbound.reply(
        Message.objects.get(pk=first.message_id).conversation, author=owner, text="Our answer"
    )
    Message.objects.filter(pk=reply.pk).update(external_id="out-1")
    assert receive(api_channel, MessageEdit("out-1", "changed by them")).outcome == (
        "target_unknown"
    )
    assert receive(api_channel, MessageDeletion("out-1")).outcome == "target_unknown"
    assert Message.objects.get(pk=reply.pk).text == "Our answer"


def test_a_reply_to_a_message_links_it_with_an_excerpt(api_channel):
    first = customer_message(api_channel, text="Do you deliver to Texel?")
    second = customer_message(api_channel, "in-2", text="And to Vlieland?", reply_to="in-1")
    unknown = customer_message(api_channel, "in-3", text="Still there?", reply_to="long-ago")
    assert Message.objects.get(pk=second.message_id).data["reply_to"] == {
        "id": first.message_id,
        "excerpt": "Do you deliver to Texel?",
        "direction": "in",
    }
    assert Message.objects.get(pk=unknown.message_id).data["reply_to"] == {
        "external_id": "long-ago"
    }


def test_journal_counts_reactions_to_unknown_messages_as_ignored(api_channel):
    summary = journal._summarise([receive(api_channel, Reaction("nope", CUSTOMER, "👍"))])
    assert summary[0] == "ignored"


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner.user)
    return client


def test_the_timeline_shows_reactions_replies_places_cards_edits_and_deletions(
    api_channel, agent_client
):
    first = customer_message(api_channel, text="Where are you?")
    customer_message(
        api_channel,
        "in-2",
        text="📍 Shop Amsterdam, Damrak 1",
        data={"location": {"latitude": 52.3731, "longitude": 4.8922, "name": "Shop Amsterdam",
                           "address": "Damrak 1"}},
        reply_to="in-1",
    )  # fmt: skip
    customer_message(
        api_channel,
        "in-3",
        text="Jan Jansen",
        data={"contacts": [{"name": "Jan Jansen", "phones": ["+31611111111"], "emails": []}]},
    )
    customer_message(api_channel, "in-4", text="[sticker]", data={"unsupported": "poll"})
    customer_message(
        api_channel, "in-5", text="Yes please", data={"choice": {"id": "yes", "title": "Yes"}}
    )
    receive(api_channel, Reaction("in-1", CUSTOMER, "🙏"))
    receive(api_channel, MessageEdit("in-5", "Yes please, tomorrow"))
    receive(api_channel, MessageDeletion("in-3"))
    number = Message.objects.get(pk=first.message_id).conversation.number

    html = agent_client.get(f"/w/{api_channel.workspace.slug}/inbox/{number}/pane/").content
    html = html.decode()
    assert '<span class="reaction">🙏</span>' in html
    assert f'<a href="#m{first.message_id}">Replying to</a>: Where are you?' in html
    assert "https://www.openstreetmap.org/?mlat=52.373100&amp;mlon=4.892200" in html
    assert "<strong>Shop Amsterdam</strong> Damrak 1" in html
    assert "👤 <strong>Jan Jansen</strong> · +31611111111" in html
    assert "Loket cannot show here (poll)" in html
    assert "Chose “Yes”" in html
    assert "Show earlier versions" in html and ">Yes please</div>" in html
    assert "The customer deleted this message" in html


def test_a_location_with_a_nonsense_position_gets_no_map_link(api_channel, agent_client):
    stored = customer_message(
        api_channel,
        text="here",
        data={"location": {"latitude": "javascript:alert(1)", "longitude": 4.9}},
    )
    number = Message.objects.get(pk=stored.message_id).conversation.number
    html = agent_client.get(f"/w/{api_channel.workspace.slug}/inbox/{number}/pane/").content
    assert b"openstreetmap" not in html
    assert b"javascript:" not in html
