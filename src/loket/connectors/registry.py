"""The connector registry: the one list of connectors. It also builds webhook URLs."""

from __future__ import annotations

from django.conf import settings

from loket.connectors.api.connector import ApiConnector
from loket.connectors.base import Connector
from loket.connectors.email.connector import EmailConnector
from loket.connectors.livechat.connector import LiveChatConnector

REGISTRY: dict[str, Connector] = {
    connector.key: connector
    for connector in (
        ApiConnector(),
        EmailConnector(),
        LiveChatConnector(),
        __import__("loket.connectors.whatsapp.connector", fromlist=["_"]).WhatsAppConnector(),
        __import__("loket.connectors.messenger.connector", fromlist=["_"]).MessengerConnector(),
        __import__("loket.connectors.instagram.connector", fromlist=["_"]).InstagramConnector(),
        __import__("loket.connectors.twilio.connector", fromlist=["_"]).TwilioConnector(),
        __import__("loket.connectors.telegram.connector", fromlist=["_"]).TelegramConnector(),
    )
}  # fmt: skip


def get_connector(kind: str) -> Connector:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise LookupError(f"unknown channel kind {kind!r}") from None


def webhook_path(kind: str, channel_uuid) -> str:
    return f"/hooks/{kind}/{channel_uuid}/"


def webhook_url(channel) -> str:
    return settings.LOKET_PUBLIC_URL + webhook_path(channel.kind, channel.uuid)
