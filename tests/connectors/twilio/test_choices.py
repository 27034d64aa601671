"""Choices by SMS: Twilio shows no buttons, so the options go out as numbered lines in the text
and the customer's "2" (or the title typed) is matched."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from loket.connectors.registry import get_connector
from loket.inbox.models import DeliveryStatus, Direction, Message
from loket.inbox.services import choices, outbound
from tests.connectors.providers import run_tasks

from .conftest import MESSAGES, new_sid, sample

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_sms_and_email_show_no_buttons():
    for kind in ("twilio", "email"):
        assert get_connector(kind).capabilities.choices == 0


def test_choices_go_out_as_numbered_text_and_the_number_back_matches(
    channel, provider, post_twilio, owner
):
    assert post_twilio(channel, sample("inbound_sms", MessageSid=new_sid())).status_code == 200
    conversation = Message.objects.filter(channel=channel).latest("pk").conversation
    text, data = choices.prepare(
        conversation,
        "Wat kunnen we voor je doen?",
        [
            {"id": "change", "title": "Boeking wijzigen"},
            {"id": "refund", "title": "Geld terug", "description": "binnen 14 dagen"},
            {"id": "other", "title": "Iets anders"},
        ],
    )
    message = outbound.reply(conversation, author=owner, text=text, data=data)
    run_tasks(retries_due=True)
    form = dict(
        parse_qsl(provider.requests_to("POST", MESSAGES)[-1].body.decode(), keep_blank_values=True)
    )
    assert form["Body"] == (
        "Wat kunnen we voor je doen?\n\n"
        "1. Boeking wijzigen\n2. Geld terug - binnen 14 dagen\n3. Iets anders"
    )
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.data["choices"]["rendered"] == "numbered"

    for body, expected in (("2", "refund"), ("iets anders", "other")):
        pairs = sample("inbound_sms", MessageSid=new_sid(), Body=body)
        assert post_twilio(channel, pairs).status_code == 200
        answer = Message.objects.filter(direction=Direction.INBOUND).latest("pk")
        assert choices.match(answer, message.data["choices"])["id"] == expected
