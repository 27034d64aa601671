"""Shared by the Messenger and Instagram tests: a fake Graph API, channels made through the real
setup path, and signed deliveries through the real webhook endpoint."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

from django.test import Client

from loket.connectors.meta import webhooks
from loket.connectors.registry import get_connector
from loket.inbox.models import Direction, Message
from loket.inbox.services.channels import create_channel
from tests.connectors.providers import Answer, FakeProvider

SAMPLES = Path("/work/shared/providers")
PAGE_ID = "109876543210987"
IG_ACCOUNT_ID = "17841400000000000"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAPageTokenForTests"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY_TOKEN = "loket-verify-token-for-tests"
MESSAGES = r"/v21\.0/me/messages"
ME = r"/v21\.0/me"


def sample(provider: str, name: str) -> dict:
    return json.loads((SAMPLES / provider / name).read_text())


def graph_fake(provider: FakeProvider, *, me: dict | None = None) -> FakeProvider:
    """Routes a channel's setup and sending need; tests queue other answers with then()."""
    answer = me or {"id": PAGE_ID, "name": "Fietsenwinkel De Ketting"}
    provider.route("GET", ME, Answer(200, answer))
    provider.route("POST", rf"/v21\.0/{PAGE_ID}/subscribed_apps", Answer(200, {"success": True}))
    counter = iter(range(1, 10_000))

    def sent(request):
        body = request.json() if request.body.startswith(b"{") else {}
        recipient = (body.get("recipient") or {}).get("id", "")
        return Answer(200, {"recipient_id": recipient, "message_id": f"m_sent_{next(counter)}"})

    provider.route("POST", MESSAGES, sent)
    return provider


def make_channel(workspace, kind: str, **config):
    base = {
        "page_access_token": PAGE_TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    }
    if kind == "messenger":
        base["page_id"] = PAGE_ID
    else:
        base["instagram_account_id"] = IG_ACCOUNT_ID
    channel, shown = create_channel(
        workspace, get_connector(kind), name=kind.title(), config={**base, **config}
    )
    return channel, shown


def post(channel, payload, *, secret: str = APP_SECRET, signature: str | None = None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {}
    if signature is not None:
        if signature:
            headers["X-Hub-Signature-256"] = signature
    else:
        headers["X-Hub-Signature-256"] = webhooks.signature(secret, body)
    return Client().post(
        f"/hooks/{channel.kind}/{channel.uuid}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def envelope(kind: str, account: str, *events, time_ms: int = 1732521600123) -> dict:
    return {
        "object": "page" if kind == "messenger" else "instagram",
        "entry": [{"id": account, "time": time_ms, "messaging": list(events)}],
    }


def event(sender: str, account: str, timestamp: int = 1732521600045, **body) -> dict:
    return {
        "sender": {"id": sender},
        "recipient": {"id": account},
        "timestamp": timestamp,
        **copy.deepcopy(body),
    }


def now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def inbound(text: str | None = None) -> Message:
    found = Message.objects.filter(direction=Direction.INBOUND)
    return found.get(text=text) if text is not None else found.get()
