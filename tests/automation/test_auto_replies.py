"""Greetings and away messages: when they go out (and when never), once per conversation, one
per contact within the rate limit, a channel's own winning over the workspace's, and the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loket.automation import autoreplies
from loket.automation.models import AutoReplyKind
from loket.inbox.models import Conversation, Message
from loket.inbox.services import channels as channel_services
from loket.tenancy.services import NotAllowed
from tests import factories
from tests.connectors.providers import run_tasks

CLOSED_ALL_WEEK = {"mon": [["00:00", "00:01"]]}  # open one minute a week: closed "now"


@pytest.fixture
def shop(transactional_db, workspace):
    workspace.name = "Acme Shop"
    workspace.save()
    return factories.api_channel(workspace, name="Shop")


def customer_writes(channel, text="Hi", *, contact_id="cust-1", name="Sanne de Vries", **kw):
    result = factories.inbound(channel, text, contact_id=contact_id, name=name, **kw)
    run_tasks()
    return result


def auto_replies(**filters) -> list[Message]:
    return list(
        Message.objects.filter(data__has_key="auto_reply", **filters).order_by("created_at", "pk")
    )


def test_a_new_conversation_is_greeted_once_with_its_variables(shop, workspace):
    autoreplies.configure(
        workspace,
        AutoReplyKind.GREETING,
        body="Hi {{contact.first_name|there}}, thanks for writing to {{workspace.name}}!",
    )
    first = customer_writes(shop, "Where is my parcel?")
    customer_writes(shop, "It was order 10452")
    [greeting] = auto_replies()
    assert greeting.conversation_id == first.conversation_id
    assert greeting.text == "Hi Sanne, thanks for writing to Acme Shop!"
    assert greeting.author_type == "system" and greeting.data["auto_reply"] == "greeting"
    assert greeting.status in ("queued", "sending", "sent", "failed")  # the one outbound path


def test_outside_business_hours_the_away_message_goes_once_per_conversation(
    shop, workspace, settings
):
    settings.LOKET_AUTO_REPLY_PER_CONTACT_MINUTES = 0  # the rate limit is tested on its own
    workspace.business_hours = CLOSED_ALL_WEEK
    workspace.save()
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hello!")
    autoreplies.configure(workspace, AutoReplyKind.AWAY, body="We are closed; back at 9.")
    customer_writes(shop, "Anyone there?")
    customer_writes(shop, "Hello??")
    kinds = [m.data["auto_reply"] for m in auto_replies()]
    assert kinds == ["away"]  # one answer per message, the away message first, once


def test_within_business_hours_no_away_message(shop, workspace):
    autoreplies.configure(workspace, AutoReplyKind.AWAY, body="We are closed.")
    customer_writes(shop)  # no hours set: always open
    assert auto_replies() == []


def test_automatic_mail_and_blocked_contacts_never_get_an_answer(shop, workspace):
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hello!")
    customer_writes(shop, "Out of office", contact_id="robot", data={"auto_submitted": True})
    customer_writes(shop, "spam", contact_id="spammer", data={"blocked": True})
    assert auto_replies() == []


def test_machine_messages_get_no_answer_and_the_persons_first_message_is_greeted(shop, workspace):
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hello!")
    system = {"provider": {"system": {"type": "customer_changed_number"}}}
    changed = customer_writes(shop, "Sanne changed her number", data=system)
    customer_writes(shop, "Newsletter", data={"auto_submitted": True})
    assert auto_replies() == []
    # The first message the person wrote is the one greeted, machine mail before it or not.
    customer_writes(shop, "Hi, a question about my order")
    [greeting] = auto_replies()
    assert greeting.conversation_id == changed.conversation_id


def test_one_automatic_answer_per_contact_within_the_rate_limit(shop, workspace, settings):
    settings.LOKET_AUTO_REPLY_PER_CONTACT_MINUTES = 60
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hello!")
    other_channel = factories.api_channel(workspace, name="Bookings")
    customer_writes(shop, "First question")
    customer_writes(other_channel, "Second question, elsewhere")  # same person? another id
    customer_writes(shop, "Another", contact_id="cust-2", name="Bram")
    assert len(auto_replies()) == 3  # three contacts (ids differ per channel): three greetings

    # The same contact starting a new conversation soon after: no second greeting.
    first = auto_replies()[0]
    Conversation.objects.filter(pk=first.conversation_id).update(status="closed")
    customer_writes(shop, "New question")
    assert len(auto_replies(conversation__contact=first.conversation.contact)) == 1
    # After the limit it is greeted again.
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    Conversation.objects.filter(contact=first.conversation.contact).update(status="closed")
    customer_writes(shop, "Yet another question")
    assert len(auto_replies(conversation__contact=first.conversation.contact)) == 2


def test_a_channels_own_auto_reply_wins_and_can_switch_it_off(shop, workspace):
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hello from Acme")
    phone = factories.api_channel(workspace, name="Phone")
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hi from the shop", channel=shop)
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="", enabled=False, channel=phone)
    customer_writes(shop, "Q1", contact_id="a")
    customer_writes(phone, "Q2", contact_id="b")
    assert [m.text for m in auto_replies()] == ["Hi from the shop"]


def test_a_channels_own_hours_decide_the_away_message(shop, workspace):
    autoreplies.configure(workspace, AutoReplyKind.AWAY, body="Closed now")
    channel_services.set_channel_hours(shop, {"hours": CLOSED_ALL_WEEK})
    customer_writes(shop)
    assert [m.text for m in auto_replies()] == ["Closed now"]


def test_invalid_auto_replies_are_refused(workspace):
    with pytest.raises(autoreplies.InvalidAutoReply, match="needs a text"):
        autoreplies.configure(workspace, AutoReplyKind.GREETING, body="  ")
    with pytest.raises(autoreplies.InvalidAutoReply, match="unknown kind"):
        autoreplies.configure(workspace, "welcome", body="Hi")
    other = factories.api_channel(factories.workspace("bravo"))
    with pytest.raises(autoreplies.InvalidAutoReply, match="another workspace"):
        autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hi", channel=other)


def test_the_api_sets_and_lists_auto_replies(workspace, api, api_channel):
    answer = api.put(
        "/auto-replies", {"kind": "away", "body": "Closed: back at 9.", "enabled": True}
    )
    assert answer.status_code == 200, answer.content
    greeting = {"kind": "greeting", "body": "Hi!", "channel_id": api_channel.pk}
    own = api.put("/auto-replies", greeting).json()
    assert own["channel_id"] == api_channel.pk
    listed = api.get("/auto-replies").json()
    assert [(r["kind"], r["channel_id"]) for r in listed] == [
        ("away", None),
        ("greeting", api_channel.pk),
    ]
    foreign = factories.api_channel(factories.workspace("bravo"))
    refused = api.put("/auto-replies", {"kind": "greeting", "body": "Hi", "channel_id": foreign.pk})
    assert refused.status_code == 400
    assert api.put("/auto-replies", {"kind": "nonsense", "body": "Hi"}).status_code == 400


def test_only_admins_change_auto_replies(workspace, agent):
    with pytest.raises(NotAllowed):
        autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hi", actor=agent)
    client = factories.ApiClient(agent)
    answer = client.put("/auto-replies", {"kind": "greeting", "body": "Hi"})
    assert answer.status_code == 403
