"""Mail from an email service's inbound webhook through Loket's one webhook path
(``/hooks/email/<uuid>/``): verified, journaled, parsed into a conversation; refused with a
challenge Amazon SNS answers; a channel reading IMAP has no webhook."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from loket.inbox.models import Conversation, InboundEvent, Message
from tests import factories

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "esp_payloads"


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"loket:{password}".encode()).decode()


def test_postmark_inbound_mail_becomes_a_conversation(client, workspace):
    channel = factories.email_channel(
        workspace, inbound="esp", esp="postmark", esp_webhook_password="pm-secret"
    )
    body = (PAYLOADS / "postmark-inbound.json").read_bytes()
    url = f"/hooks/email/{channel.uuid}/"
    refused = client.post(url, body, content_type="application/json")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Basic")
    wrong = client.post(
        url, body, content_type="application/json", headers={"Authorization": basic("nope")}
    )
    assert wrong.status_code == 401
    assert not InboundEvent.objects.filter(channel=channel).exists()

    accepted = client.post(
        url, body, content_type="application/json", headers={"Authorization": basic("pm-secret")}
    )
    assert accepted.status_code == 200, accepted.content
    message = Message.objects.get(channel=channel)
    assert message.data["email"]["message_id"]
    assert Conversation.objects.get(pk=message.conversation_id).subject
    again = client.post(
        url, body, content_type="application/json", headers={"Authorization": basic("pm-secret")}
    )
    assert again.status_code == 200
    assert Message.objects.filter(channel=channel).count() == 1  # deduped by Message-ID


def test_an_email_service_channel_needs_its_secrets(workspace):
    from loket.connectors.base import InvalidConfig

    with pytest.raises(InvalidConfig, match="webhook password"):
        factories.email_channel(workspace, inbound="esp", esp="postmark")
    with pytest.raises(InvalidConfig, match="esp must be one of"):
        factories.email_channel(workspace, inbound="esp", esp="hotmail")


def test_a_channel_reading_imap_or_smtp_has_no_webhook(client, workspace):
    channel = factories.email_channel(workspace)
    response = client.post(f"/hooks/email/{channel.uuid}/", b"{}", content_type="application/json")
    assert response.status_code == 404
