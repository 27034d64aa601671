"""Choices on Instagram: quick replies, as on Messenger (the same Send API)."""

from __future__ import annotations

from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, Direction, Message
from loket.inbox.services import choices, outbound
from tests.connectors.messenger import support
from tests.connectors.messenger.support import IG_ACCOUNT_ID, MESSAGES, post
from tests.connectors.providers import run_tasks

IGSID = "6543210987654321"


def test_choices_are_quick_replies_and_the_tap_comes_back(instagram, owner, graph):
    assert get_connector("instagram").capabilities.choices == 13
    assert post(instagram, support.sample("instagram", "text_message.json")).status_code == 200
    conversation = Conversation.objects.get()
    text, data = choices.prepare(conversation, "Welke maat?", ["S", "M", ("L", "L (laatste)")])
    sent = outbound.reply(conversation, author=owner, text=text, data=data)
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.json()["recipient"] == {"id": IGSID}
    assert request.json()["message"] == {
        "text": "Welke maat?",
        "quick_replies": [
            {"content_type": "text", "title": "S", "payload": "S"},
            {"content_type": "text", "title": "M", "payload": "M"},
            {"content_type": "text", "title": "L (laatste)", "payload": "L"},
        ],
    }
    event = support.event(
        IGSID,
        IG_ACCOUNT_ID,
        message={"mid": "aWdfqr", "text": "L (laatste)", "quick_reply": {"payload": "L"}},
    )
    assert post(instagram, support.envelope("instagram", IG_ACCOUNT_ID, event)).status_code == 200
    answer = Message.objects.get(external_id="aWdfqr", direction=Direction.INBOUND)
    assert choices.match(answer, sent.data["choices"])["id"] == "L"
