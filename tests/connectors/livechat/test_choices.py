"""Choices in the live-chat widget: a question's options reach the widget with the message, and a
tapped button comes back as the visitor's message with data["choice"]."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, Direction, Message
from loket.inbox.services import choices, outbound
from loket.inbox.services.channels import create_channel

pytestmark = pytest.mark.django_db

ITEMS = [
    {"id": "change", "title": "Change my booking"},
    {"id": "refund", "title": "Refund", "description": "Money back"},
]


@pytest.fixture
def chat(workspace):
    channel, _ = create_channel(
        workspace, get_connector("livechat"), name="Website", config={"title": "Support"}
    )
    return channel


def api(channel, path: str, body: dict | None = None, **headers):
    url = f"/widget/{channel.uuid}/api/{path}"
    if body is None:
        return Client().get(url, headers=headers)
    return Client().post(url, json.dumps(body), content_type="application/json", headers=headers)


def asked(chat, owner) -> tuple[str, Message]:
    token = api(chat, "session", {}).json()["token"]
    shown = api(chat, "messages", {"token": token, "client_id": "c-1", "text": "Hi"}).json()
    conversation = Conversation.objects.get(
        pk=Message.objects.get(pk=shown["message"]["id"]).conversation_id
    )
    text, data = choices.prepare(conversation, "What can we do?", ITEMS)
    question = outbound.reply(conversation, author=owner, text=text, data=data)
    outbound.deliver(question.pk)
    return token, question


def test_the_live_chat_shows_up_to_ten_buttons():
    assert get_connector("livechat").capabilities.choices == 10


def test_the_widget_gets_the_options_with_the_question(chat, owner):
    token, question = asked(chat, owner)
    polled = api(chat, "messages?after=0", **{"X-Loket-Visitor": token}).json()["messages"]
    shown = next(m for m in polled if m["id"] == question.pk)
    assert shown["text"] == "What can we do?"
    assert shown["choices"] == [
        {"id": "change", "title": "Change my booking"},
        {"id": "refund", "title": "Refund"},
    ]
    assert all(m["choices"] == [] for m in polled if m["id"] != question.pk)


def test_a_tapped_button_is_the_visitors_choice(chat, owner):
    token, question = asked(chat, owner)
    response = api(
        chat,
        "messages",
        {
            "token": token,
            "client_id": "c-2",
            "text": "",
            "choice": {"id": "refund", "title": "Refund"},
        },
    )
    assert response.status_code == 201, response.content
    answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
    assert answer.text == "Refund"
    assert answer.data["choice"] == {"id": "refund", "title": "Refund"}
    assert choices.match(answer, question.data["choices"])["id"] == "refund"


def test_a_bad_choice_is_refused(chat):
    token = api(chat, "session", {}).json()["token"]
    response = api(chat, "messages", {"token": token, "client_id": "c-3", "text": "x", "choice": 5})
    assert response.status_code == 400
