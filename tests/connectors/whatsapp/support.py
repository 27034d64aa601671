"""Builders for the WhatsApp tests: channels, notifications shaped like Meta's (see samples/,
copied from the shared provider samples) and signed posts through the real webhook endpoint."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

from django.test import Client

from loket.connectors.meta import webhooks
from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel

SAMPLES = Path(__file__).parent / "samples"
NUMBER_ID = "106540352242922"
ACCOUNT_ID = "102290129340398"
TOKEN = "EAAGtest0token0for0the0fake0graph"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
CUSTOMER = "31612345678"
MEDIA_BYTES = b"\xff\xd8\xff\xe0" + b"JPEG bytes of the parcel photo" * 40

_seq = itertools.count(1)

TEMPLATES = [
    {
        "name": "order_update",
        "language": "nl",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1290447338812711",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Bestelling {{1}}"},
            {"type": "BODY", "text": "Hoi {{1}}, je bestelling is {{2}}."},
            {"type": "FOOTER", "text": "Team Acme"},
        ],
    },
    {
        "name": "welcome_back",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "id": "1290447338812712",
        "components": [{"type": "BODY", "text": "Welcome back!"}],
    },
]


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def make_channel(workspace, **config):
    channel, _shown = create_channel(
        workspace,
        get_connector("whatsapp"),
        name="WhatsApp",
        config={
            "phone_number_id": NUMBER_ID,
            "business_account_id": ACCOUNT_ID,
            "access_token": TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            **config,
        },
    )
    return channel


def wamid() -> str:
    return f"wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQz{next(_seq):020d}AA="


def message(kind: str = "text", content=None, *, sender=CUSTOMER, message_id=None, **extra):
    """One entry of ``messages``; ``content`` is the object under the type's key."""
    if content is None and kind == "text":
        content = {"body": "Hoi!"}
    found = {
        "from": sender,
        "id": message_id or wamid(),
        "timestamp": "1732521600",
        "type": kind,
        **extra,
    }
    if content is not None:
        found[kind] = content
    return found


def change(messages=(), statuses=(), *, contacts=None, number_id=NUMBER_ID) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "31201234567", "phone_number_id": number_id},
    }
    senders = {m["from"] for m in messages if m.get("from")}
    if contacts is None:
        contacts = [{"profile": {"name": "Sanne de Vries"}, "wa_id": s} for s in sorted(senders)]
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def notification(*changes, entries: int = 1) -> dict:
    """Changes spread over ``entries`` entries, as Meta batches them."""
    buckets = [[] for _ in range(entries)]
    for index, found in enumerate(changes):
        buckets[index % entries].append(found)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": ACCOUNT_ID, "changes": bucket} for bucket in buckets],
    }


def status(message_id: str, state: str, timestamp: str = "1732521720", **extra) -> dict:
    base = copy.deepcopy(sample("status_delivered"))["entry"][0]["changes"][0]["value"]["statuses"]
    found = {**base[0], "id": message_id, "status": state, "timestamp": timestamp, **extra}
    if state != "sent":
        found.pop("pricing", None)
    return found


def post(channel, payload, *, secret: str | None = None, signature: str | None = None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {}
    if signature is None:
        signature = webhooks.signature(secret or APP_SECRET, body)
    if signature:
        headers["X-Hub-Signature-256"] = signature
    return Client().post(
        f"/hooks/whatsapp/{channel.uuid}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def sent_answer(message_id: str) -> dict:
    answer = sample("send_text_response")
    answer["messages"][0]["id"] = message_id
    return answer
