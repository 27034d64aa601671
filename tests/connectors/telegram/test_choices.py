"""Choices on Telegram: an inline keyboard (one button a row, callback_data = the option's id,
a stand-in for ids over 64 bytes), and the tap back as data["choice"] with the id, the spinner
answered with answerCallbackQuery."""

from __future__ import annotations

import copy

import pytest

from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, DeliveryStatus, Direction, Message
from loket.inbox.services import choices, outbound
from loket.inbox.services.outbound import OutgoingFile
from tests.connectors.providers import run_tasks
from tests.connectors.telegram.conftest import multipart, payload

pytestmark = pytest.mark.usefixtures("transactional_db")

CHAT = 480112233
LONG_ID = "booking:" + "x" * 80  # over Telegram's 64 bytes of callback_data


@pytest.fixture
def conversation(channel, post_update):
    assert post_update(channel, payload("text_message")).status_code == 200
    return Conversation.objects.get()


def ask(conversation, owner, text, items, **kw):
    text, data = choices.prepare(conversation, text, items)
    message = outbound.reply(conversation, author=owner, text=text, data=data, **kw)
    run_tasks()
    message.refresh_from_db()
    return message


def tap(post_update, channel, sent_id: int, data: str, text: str):
    update = payload("callback_query")
    query = update["callback_query"]
    query["id"] = f"cb-{sent_id}-{len(data)}"
    query["message"]["message_id"] = sent_id
    query["message"]["reply_markup"] = {
        "inline_keyboard": [[{"text": text, "callback_data": data}]]
    }
    query["data"] = data
    return post_update(channel, copy.deepcopy(update))


def test_telegram_shows_choices_natively():
    capabilities = get_connector("telegram").capabilities
    assert (capabilities.choices, capabilities.choice_title_max) == (20, 64)


def test_choices_are_an_inline_keyboard_one_button_a_row(conversation, owner, telegram):
    items = [
        {"id": "trip:PAR-88412", "title": "Piraeus → Paros"},
        {"id": "other", "title": "Iets anders"},
    ]
    message = ask(conversation, owner, "Welke overtocht?", items)
    (request,) = telegram.sends("sendMessage")
    assert request.json() == {
        "chat_id": CHAT,
        "text": "Welke overtocht?",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Piraeus → Paros", "callback_data": "trip:PAR-88412"}],
                [{"text": "Iets anders", "callback_data": "other"}],
            ]
        },
    }
    assert message.status == DeliveryStatus.SENT
    assert "telegram_keyboard" not in message.data  # no stand-ins needed


def test_a_tap_is_the_choice_and_the_spinner_is_answered(
    conversation, owner, telegram, channel, post_update
):
    items = [
        {"id": "trip:PAR-88412", "title": "Piraeus → Paros"},
        {"id": "other", "title": "Iets anders"},
    ]
    message = ask(conversation, owner, "Welke overtocht?", items)
    sent_id = int(message.external_id.split(":")[1])
    response = tap(post_update, channel, sent_id, "other", "Iets anders")
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": f"cb-{sent_id}-5",
    }
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"] == {"id": "other", "title": "Iets anders"}
    assert answer.text == "Iets anders"
    assert choices.match(answer, message.data["choices"])["id"] == "other"


def test_an_id_over_64_bytes_goes_as_a_stand_in_and_comes_back(
    conversation, owner, telegram, channel, post_update
):
    items = [{"id": "short", "title": "Kort"}, {"id": LONG_ID, "title": "Lang"}]
    message = ask(conversation, owner, "Welke?", items)
    (request,) = telegram.sends("sendMessage")
    keyboard = request.json()["reply_markup"]["inline_keyboard"]
    assert keyboard == [
        [{"text": "Kort", "callback_data": "short"}],
        [{"text": "Lang", "callback_data": "loket:2"}],
    ]
    assert message.data["telegram_keyboard"] == {
        "message": message.external_id,
        "tokens": {"loket:2": LONG_ID},
    }
    sent_id = int(message.external_id.split(":")[1])
    assert tap(post_update, channel, sent_id, "loket:2", "Lang").status_code == 200
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.data["choice"]["id"] == LONG_ID
    assert choices.match(answer, message.data["choices"])["id"] == LONG_ID


def test_with_a_file_the_keyboard_goes_under_the_text_after_it(conversation, owner, telegram):
    message = ask(
        conversation,
        owner,
        "Is dit je ticket?",
        ["Ja", "Nee"],
        attachments=[OutgoingFile("ticket.pdf", "application/pdf", b"%PDF-1.4 a ticket")],
    )
    (document,) = telegram.sends("sendDocument")
    assert "caption" not in multipart(document)
    (text,) = telegram.sends("sendMessage")
    assert text.json()["text"] == "Is dit je ticket?"
    assert text.json()["reply_markup"]["inline_keyboard"][1] == [
        {"text": "Nee", "callback_data": "Nee"}
    ]
    assert message.status == DeliveryStatus.SENT
