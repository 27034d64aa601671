"""The API channel passes choices through: in the JSON it POSTs, and as a ``choice`` it receives."""

from __future__ import annotations

import json

import pytest

from loket.inbox.models import Conversation, Message
from loket.inbox.services import choices, outbound
from loket.jobs.worker import Worker
from tests import factories
from tests.jobs.receiver import running_receiver

pytestmark = pytest.mark.django_db

ITEMS = [
    {"id": "change", "title": "Change booking", "description": "Another date or room"},
    {"id": "refund", "title": "Refund"},
]


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


def test_the_outbound_json_carries_the_choices(workspace, owner, receiver):
    channel = factories.api_channel(workspace, outbound_url=receiver.url)
    result = factories.inbound(channel, "Hi", contact_id="cust-42")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    text, data = choices.prepare(conversation, "What can we do?", ITEMS, prompt="Pick one")
    message = outbound.reply(conversation, author=owner, text=text, data=data)
    worker = Worker(worker_id="test")
    worker.execute(worker.claim())
    body = json.loads(receiver.requests[0].body)
    assert body["id"] == f"out_{message.pk}"
    assert body["text"] == "What can we do?"
    assert body["choices"] == {
        "items": [
            {"id": "change", "title": "Change booking", "description": "Another date or room"},
            {"id": "refund", "title": "Refund", "description": ""},
        ],
        "prompt": "Pick one",
    }


def test_a_plain_reply_has_no_choices_key(workspace, owner, receiver):
    channel = factories.api_channel(workspace, outbound_url=receiver.url)
    result = factories.inbound(channel, "Hi", contact_id="cust-42")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    outbound.reply(conversation, author=owner, text="Hello")
    worker = Worker(worker_id="test")
    worker.execute(worker.claim())
    assert "choices" not in json.loads(receiver.requests[0].body)


def delivery(**extra):
    return {"id": "ext-1", "contact": {"id": "cust-1", "name": "Emily"}, **extra}


def test_an_inbound_choice_is_stored_and_matches(api_channel, post_webhook):
    response = post_webhook(api_channel, delivery(choice={"id": "refund", "title": "Refund"}))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.text == "Refund"  # no text given: the title
    assert message.data["choice"] == {"id": "refund", "title": "Refund"}
    assert choices.match(message, ITEMS)["id"] == "refund"


def test_an_inbound_choice_with_text_keeps_the_text(api_channel, post_webhook):
    post_webhook(api_channel, delivery(text="Money back please", choice={"id": "refund"}))
    message = Message.objects.get()
    assert message.text == "Money back please"
    assert message.data["choice"] == {"id": "refund", "title": "refund"}


@pytest.mark.parametrize("choice", ["refund", {"title": ""}, {"id": ["x"]}])
def test_a_bad_choice_is_400(api_channel, post_webhook, choice):
    response = post_webhook(api_channel, delivery(text="x", choice=choice))
    assert response.status_code == 400
    assert "choice" in response.json()["error"]["message"]
