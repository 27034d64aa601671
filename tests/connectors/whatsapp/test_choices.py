"""Choices on WhatsApp: up to 3 options as reply buttons, up to 10 as a list, the tapped answer
coming back as data["choice"] with the same id (the documented interactive message bodies)."""

from __future__ import annotations

import pytest

from loket.inbox.models import Conversation, DeliveryStatus, Direction, Message
from loket.inbox.services import choices, outbound
from tests.connectors.providers import Answer, run_tasks
from tests.connectors.whatsapp import support
from tests.connectors.whatsapp.support import CUSTOMER, change, message, notification, post

MESSAGES = r"/v21\.0/\d+/messages"


@pytest.fixture
def conversation(channel):
    assert post(channel, support.sample("text_message")).status_code == 200
    return Conversation.objects.get()


def send(conversation, owner, graph, text, items, prompt="", answers=1):
    graph.then(
        "POST",
        MESSAGES,
        *[Answer(200, support.sent_answer(support.wamid())) for _ in range(answers)],
    )
    text, data = choices.prepare(conversation, text, items, prompt=prompt)
    reply = outbound.reply(conversation, author=owner, text=text, data=data)
    run_tasks(retries_due=True)
    reply.refresh_from_db()
    return reply, [r.json() for r in graph.requests_to("POST", MESSAGES)]


def test_whatsapp_shows_up_to_ten_options():
    from loket.connectors.registry import get_connector

    capabilities = get_connector("whatsapp").capabilities
    assert (capabilities.choices, capabilities.choice_title_max) == (10, 20)


def test_three_options_are_reply_buttons(conversation, owner, graph):
    items = [
        {"id": "change", "title": "Change booking"},
        {"id": "refund", "title": "Refund"},
        {"id": "other", "title": "Something else entirely"},
    ]
    reply, [body] = send(conversation, owner, graph, "What can we do?", items)
    assert reply.status == DeliveryStatus.SENT
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "What can we do?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "change", "title": "Change booking"}},
                    {"type": "reply", "reply": {"id": "refund", "title": "Refund"}},
                    {"type": "reply", "reply": {"id": "other", "title": "Something else…"}},
                ]
            },
        },
    }
    assert reply.text == "What can we do?"


def test_four_to_ten_options_are_a_list_with_one_section(conversation, owner, graph):
    items = [{"id": f"slot-{n}", "title": f"{8 + n}:00"} for n in range(5)]
    items[0]["description"] = "Early bird: the first slot of the day, coffee included for everyone"
    _, [body] = send(conversation, owner, graph, "Pick a time", items, prompt="Times")
    assert body["type"] == "interactive"
    rows = [{"id": f"slot-{n}", "title": f"{8 + n}:00"} for n in range(5)]
    rows[0]["description"] = "Early bird: the first slot of the day, coffee included for everyone"
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": "Pick a time"},
        "action": {"button": "Times", "sections": [{"rows": rows}]},
    }
    assert len(rows[0]["description"]) <= 72


def test_a_long_description_and_prompt_are_cut_to_whatsapps_limits(conversation, owner, graph):
    items = [
        {"id": "a", "title": "Yes", "description": "word " * 30},
        {"id": "b", "title": "No"},
    ]
    _, [body] = send(
        conversation, owner, graph, "Sure?", items, prompt="Choose one of these please"
    )
    action = body["interactive"]["action"]
    assert body["interactive"]["type"] == "list"  # buttons cannot show descriptions
    assert len(action["button"]) <= 20 and action["button"].endswith("…")
    assert len(action["sections"][0]["rows"][0]["description"]) <= 72


def test_more_than_ten_options_go_as_numbered_text(conversation, owner, graph):
    items = [f"Option {n}" for n in range(1, 12)]
    reply, [body] = send(conversation, owner, graph, "Which?", items)
    assert body["type"] == "text"
    assert body["text"]["body"].startswith("Which?\n\n1. Option 1\n2. Option 2")
    assert body["text"]["body"].endswith("11. Option 11")
    assert reply.data["choices"]["rendered"] == "numbered"


def test_a_body_longer_than_1024_characters_goes_before_the_buttons(conversation, owner, graph):
    text = "Lang verhaal. " * 100
    _, bodies = send(conversation, owner, graph, text, ["Ja", "Nee"], prompt="Kies", answers=2)
    assert [b["type"] for b in bodies] == ["text", "interactive"]
    assert bodies[0]["text"]["body"] == text.strip()
    assert bodies[1]["interactive"]["body"] == {"text": "Kies"}


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("button_reply", {"id": "refund", "title": "Refund"}),
        ("list_reply", {"id": "refund", "title": "Refund", "description": "Money back"}),
    ],
)
def test_the_tapped_option_comes_back_with_its_id(
    conversation, owner, graph, channel, kind, content
):
    items = [{"id": "change", "title": "Change booking"}, {"id": "refund", "title": "Refund"}]
    reply, _ = send(conversation, owner, graph, "What can we do?", items)
    tapped = message(
        "interactive", {"type": kind, kind: content}, context={"id": reply.external_id}
    )
    assert post(channel, notification(change([tapped]))).status_code == 200
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"]["id"] == "refund"
    assert choices.match(answer, reply.data["choices"])["id"] == "refund"
