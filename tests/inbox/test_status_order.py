"""Delivery statuses only move forward, also around a reported failure: a late "sent" never
hides it, while a delivery or read report proves it wrong."""

from __future__ import annotations

import pytest

from loket.inbox.items import InboundContact, InboundMessage, StatusUpdate
from loket.inbox.models import Message
from loket.inbox.services import outbound
from loket.inbox.services.ingest import receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(api_channel, owner):
    stored = receive(api_channel, InboundMessage("in-1", InboundContact("c-1"), text="Hi"))
    conversation = Message.objects.get(pk=stored.message_id).conversation
    reply = outbound.reply(conversation, author=owner, text="Hello!")
    Message.objects.filter(pk=reply.pk).update(external_id="out-1", status="sent")
    return reply


def status(channel, value: str, error: str = "") -> str:
    receive(channel, StatusUpdate("out-1", value, error=error))
    return Message.objects.values_list("status", flat=True).get(external_id="out-1")


def test_a_late_sent_does_not_hide_a_failure(api_channel, sent):
    assert status(api_channel, "failed", "30003 unreachable") == "failed"
    assert status(api_channel, "sent") == "failed"
    assert Message.objects.get(pk=sent.pk).error == "30003 unreachable"


def test_a_delivery_report_after_a_failure_wins(api_channel, sent):
    assert status(api_channel, "failed") == "failed"
    assert status(api_channel, "delivered") == "delivered"
    assert status(api_channel, "failed") == "delivered"  # too late to fail now
    assert status(api_channel, "read") == "read"
    assert status(api_channel, "delivered") == "read"
