"""Choices on Messenger: quick replies under the reply's text (the documented Send API body),
and the tapped quick reply back as data["choice"] with the same payload."""

from __future__ import annotations

from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, DeliveryStatus, Direction, Message
from loket.inbox.services import choices, outbound
from tests.connectors.messenger import support
from tests.connectors.messenger.support import MESSAGES, PAGE_ID, post
from tests.connectors.providers import run_tasks

PSID = "7012345678901234"
ITEMS = [
    {"id": "DAY_SAT", "title": "Saturday"},
    {"id": "DAY_SUN", "title": "Sunday, if the shop is open then"},
]


def conversation_with_customer(channel) -> Conversation:
    assert post(channel, support.sample("messenger", "text_message.json")).status_code == 200
    conversation = Conversation.objects.get()
    conversation.refresh_from_db()
    return conversation


def test_messenger_shows_up_to_13_quick_replies():
    capabilities = get_connector("messenger").capabilities
    assert (capabilities.choices, capabilities.choice_title_max) == (13, 20)


def test_choices_are_quick_replies_on_the_text(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    text, data = choices.prepare(conversation, "Which day suits you?", ITEMS)
    message = outbound.reply(conversation, author=owner, text=text, data=data)
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "text": "Which day suits you?",
            "quick_replies": [
                {"content_type": "text", "title": "Saturday", "payload": "DAY_SAT"},
                {"content_type": "text", "title": "Sunday, if the…", "payload": "DAY_SUN"},
            ],
        },
    }
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT


def test_with_a_file_the_quick_replies_go_on_the_last_message(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    text, data = choices.prepare(conversation, "Is this the bike?", ["Yes", "No"])
    message = outbound.reply(
        conversation,
        author=owner,
        text=text,
        data=data,
        attachments=[outbound.OutgoingFile("bike.jpg", "image/jpeg", b"\xff\xd8\xff" * 10)],
    )
    run_tasks(retries_due=True)
    first, second = graph.requests_to("POST", MESSAGES)
    assert b'name="filedata"; filename="bike.jpg"' in first.body
    assert second.json()["message"]["quick_replies"][1] == {
        "content_type": "text",
        "title": "No",
        "payload": "No",
    }
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT


def test_the_tapped_quick_reply_is_the_choice(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    text, data = choices.prepare(conversation, "Which day suits you?", ITEMS)
    sent = outbound.reply(conversation, author=owner, text=text, data=data)
    event = support.event(
        PSID,
        PAGE_ID,
        message={"mid": "m_qr", "text": "Sunday, if the…", "quick_reply": {"payload": "DAY_SUN"}},
    )
    assert post(messenger, support.envelope("messenger", PAGE_ID, event)).status_code == 200
    answer = Message.objects.get(external_id="m_qr", direction=Direction.INBOUND)
    assert answer.data["choice"] == {"id": "DAY_SUN", "title": "Sunday, if the…"}
    assert choices.match(answer, sent.data["choices"])["id"] == "DAY_SUN"
