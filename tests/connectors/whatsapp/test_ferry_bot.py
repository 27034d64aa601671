"""The demo's "Ferry booking helper" on WhatsApp, end to end: signed webhook deliveries in, the
bot's replies out to the local fake Graph API (its choices as interactive reply buttons), the
customer's button taps understood, the booking looked up on the demo endpoint of a live server
through the SSRF-guarded client."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from loket.bots import services as flow_services
from loket.bots.models import BotSession, Flow, SessionState
from loket.inbox.models import Conversation, Direction, Message, MessageKind
from loket.tenancy.models import Workspace
from tests.connectors.providers import run_tasks
from tests.connectors.whatsapp import support
from tests.connectors.whatsapp.support import CUSTOMER, change, message, notification, post

MESSAGES = r"/v21\.0/\d+/messages"


@pytest.fixture
def demo_whatsapp(graph, live_server, settings):
    """The demo workspace (``loket demo`` against live_server) with a WhatsApp channel the
    ferry bot talks on too. (The fake Graph API is on loopback, so private addresses stay
    allowed here; tests/web/test_demo_ferry.py runs the look-up with them refused.)"""
    settings.LOKET_DEMO_ENDPOINTS = True
    settings.LOKET_PUBLIC_URL = live_server.url
    call_command("demo", stdout=io.StringIO())
    workspace = Workspace.objects.get(slug="demo")
    channel = support.make_channel(workspace)
    flow = Flow.objects.get(workspace=workspace, name="Ferry booking helper")
    channel_ids = [*flow.channels.values_list("pk", flat=True), channel.pk]
    flow_services.update_flow(flow, channel_ids=channel_ids)
    graph.requests.clear()
    return channel


def sent(graph, since: int) -> list[dict]:
    return [r.json() for r in graph.requests_to("POST", MESSAGES)[since:]]


def deliver(channel, graph, entry) -> list[dict]:
    """One signed delivery from the customer; the bot's turn runs; what went out to Meta."""
    before = len(graph.requests_to("POST", MESSAGES))
    assert post(channel, notification(change([entry]))).status_code == 200
    run_tasks(retries_due=True)
    return sent(graph, before)


def tap(reply: Message, option_id: str, title: str) -> dict:
    return message(
        "interactive",
        {"type": "button_reply", "button_reply": {"id": option_id, "title": title}},
        context={"id": reply.external_id},
    )


def last_bot_message(conversation) -> Message:
    return Message.objects.filter(
        conversation=conversation, author_type="bot", kind=MessageKind.MESSAGE
    ).latest("pk")


def buttons(body: dict) -> list[tuple[str, str]]:
    assert body["type"] == "interactive" and body["interactive"]["type"] == "button", body
    return [
        (b["reply"]["id"], b["reply"]["title"]) for b in body["interactive"]["action"]["buttons"]
    ]


def test_a_whatsapp_customer_changes_a_booking_with_the_ferry_bot(demo_whatsapp, graph):
    channel = demo_whatsapp
    out = deliver(channel, graph, message("text", {"body": "Hello"}))
    conversation = Conversation.objects.get(channel=channel)
    assert [body["to"] for body in out] == [CUSTOMER, CUSTOMER]
    assert out[0]["type"] == "text"
    assert out[0]["text"]["body"].startswith("Hi Sanne! I'm the ferry booking helper")
    # The choice goes out as interactive reply buttons, not numbered text.
    assert out[1]["interactive"]["body"]["text"] == "What can I help you with?"
    assert buttons(out[1]) == [
        ("change", "Change booking"),
        ("refund", "Refund"),
        ("other", "Something else"),
    ]
    question = last_bot_message(conversation)
    assert question.external_id  # sent: Meta's wamid, which the tap's context refers to

    out = deliver(channel, graph, tap(question, "change", "Change booking"))
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"]["id"] == "change"
    assert BotSession.objects.get(conversation=conversation).variables["need"] == "change"
    assert [body["text"]["body"] for body in out] == [
        "What is your booking code? It is two letters and six digits, like FB123456."
    ]

    out = deliver(channel, graph, message("text", {"body": "it is 1234"}))
    assert out[0]["text"]["body"].startswith("That doesn't look like a booking code")
    out = deliver(channel, graph, message("text", {"body": "fb123456"}))
    assert out[0]["text"]["body"] == (
        "I found booking FB123456: Den Helder → Texel on 2026-06-12. The MS Texel departs at 14:30."
    )
    assert out[1]["interactive"]["body"]["text"].startswith("Shall I pass this on")
    assert buttons(out[1]) == [("yes", "Yes, please"), ("no", "No, thanks")]

    out = deliver(channel, graph, tap(last_bot_message(conversation), "no", "No, thanks"))
    assert [body["text"]["body"] for body in out] == ["Have a good crossing!"]
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    session = BotSession.objects.get(conversation=conversation)
    assert session.state == SessionState.COMPLETED
    assert session.path == ["welcome", "need", "code", "lookup", "answer", "more", "bye"]
    assert all(
        m.status == "sent"
        for m in Message.objects.filter(conversation=conversation, author_type="bot")
    )


def test_a_tap_on_yes_hands_over_to_the_support_team_with_a_note(demo_whatsapp, graph):
    channel = demo_whatsapp
    deliver(channel, graph, message("text", {"body": "Hi"}))
    conversation = Conversation.objects.get(channel=channel)
    deliver(channel, graph, tap(last_bot_message(conversation), "refund", "Refund"))
    deliver(channel, graph, message("text", {"body": "TX240601"}))
    out = deliver(channel, graph, tap(last_bot_message(conversation), "yes", "Yes, please"))
    assert [body["text"]["body"] for body in out] == [
        "I'm passing you to a colleague, who can see what you told me. One moment please."
    ]
    conversation.refresh_from_db()
    assert conversation.team.name == "Support"
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert "- need: refund" in note.text and "- booking_code: TX240601" in note.text
    assert "- ship: MS Texelstroom" in note.text
    assert len(graph.requests_to("POST", MESSAGES)) == len(
        Message.objects.filter(conversation=conversation, author_type="bot", kind="message")
    )  # the note never went to the customer
