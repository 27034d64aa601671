"""The live-chat widget's backend: sessions with signed tokens, messages through the journal,
identity by HMAC, the pre-chat form, replies and read receipts, abuse limits."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client

from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Contact,
    ContactIdentity,
    Conversation,
    DeliveryStatus,
    InboundEvent,
    Message,
)
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(workspace):
    channel, shown = create_channel(
        workspace,
        get_connector("livechat"),
        name="Website",
        config={
            "title": "Shop support",
            "allowed_origins": ["https://www.shop.example"],
            "prechat": {
                "enabled": True,
                "fields": [
                    {"name": "name", "label": "Name", "required": True},
                    {"name": "email", "label": "Email", "type": "email", "required": True},
                    {"name": "order", "label": "Order number"},
                ],
            },
        },
    )
    channel.shown_secret = shown["secret"]
    return channel


def api(channel, path: str, body: dict | None = None, *, method="post", **headers):
    client = Client()
    url = f"/widget/{channel.uuid}/api/{path}"
    if method == "get":
        return client.get(url, headers=headers)
    return client.post(
        url, json.dumps(body or {}), content_type="application/json", headers=headers
    )


def start(channel, **body) -> dict:
    response = api(channel, "session", body)
    assert response.status_code == 200, response.content
    return response.json()


def say(channel, token: str, text: str, client_id: str):
    return api(channel, "messages", {"token": token, "client_id": client_id, "text": text})


def test_setup_validates_and_shows_the_identity_secret_once():
    connector = get_connector("livechat")
    from loket.connectors.base import InvalidConfig

    for bad, reason in [
        ({"color": "red"}, "color"),
        ({"allowed_origins": ["https://x.example/path"]}, "origin"),
        ({"position": "top"}, "position"),
        ({"prechat": {"enabled": True, "fields": [{"name": "Bad Name"}]}}, "prechat"),
        ({"nope": 1}, "unknown"),
    ]:
        with pytest.raises(InvalidConfig, match=reason):
            connector.setup(bad)
    setup = connector.setup({"allowed_origins": "https://A.example, https://b.example:8443"})
    assert setup.settings["allowed_origins"] == ["https://a.example", "https://b.example:8443"]
    assert len(setup.shown_once["secret"]) == 64


def test_a_session_starts_resumes_and_keeps_the_history(chat):
    first = start(chat, locale="nl-NL")
    assert first["config"]["title"] == "Shop support"
    assert first["config"]["texts"]["send"] == "Versturen"
    assert first["messages"] == [] and first["visitor"]["verified"] is False
    token = first["token"]
    prechat = api(chat, "prechat", {"token": token, "name": "Ann", "email": "ann@example.com",
                                    "fields": {"order": "NL123"}})  # fmt: skip
    assert prechat.status_code == 200, prechat.content
    token = prechat.json()["token"]
    sent = say(chat, token, "Where is my order?", "c-1")
    assert sent.status_code == 201, sent.content
    shown = sent.json()["message"]
    assert shown["direction"] == "in" and shown["client_id"] == "c-1"
    again = say(chat, token, "Where is my order?", "c-1")  # a retried send stores nothing new
    assert again.json()["message"]["id"] == shown["id"]
    assert Message.objects.filter(channel=chat).count() == 1
    assert InboundEvent.objects.filter(channel=chat).count() == 2  # both journaled

    contact = Contact.objects.get(pk=Message.objects.get(pk=shown["id"]).author_contact_id)
    assert (contact.name, contact.email) == ("Ann", "ann@example.com")
    resumed = start(chat, token=token)
    assert [m["text"] for m in resumed["messages"]] == ["Where is my order?"]
    assert resumed["visitor"]["prechat_done"] is True


def test_the_pre_chat_form_checks_required_fields_and_email(chat):
    token = start(chat)["token"]
    missing = api(chat, "prechat", {"token": token, "name": "Ann"})
    assert missing.status_code == 400 and "Email" in missing.json()["error"]["message"]
    bad = api(chat, "prechat", {"token": token, "name": "Ann", "email": "nope"})
    assert bad.status_code == 400


def test_tokens_are_per_channel_and_tamper_proof(chat, workspace):
    other, _ = create_channel(workspace, get_connector("livechat"), name="Other", config={})
    token = start(chat)["token"]
    assert say(other, token, "Hi", "c-1").status_code == 401
    assert say(chat, token[:-2] + "xx", "Hi", "c-1").status_code == 401
    assert api(chat, "messages", method="get", **{"X-Loket-Visitor": "junk"}).status_code == 401


def test_a_valid_identity_hmac_links_the_contact_and_its_history_a_forged_one_not(chat):
    signature = hmac.new(chat.shown_secret.encode(), b"42", hashlib.sha256).hexdigest()
    user = {"id": "42", "name": "Ann", "email": "ann@example.com", "hmac": signature}
    first = start(chat, user=user)
    assert first["visitor"]["verified"] is True
    say(chat, first["token"], "My account question", "c-1")
    # Another device, the same signed-in user: the same contact and history.
    elsewhere = start(chat, user=user)
    assert [m["text"] for m in elsewhere["messages"]] == ["My account question"]
    assert ContactIdentity.objects.filter(channel=chat, external_id="user:42").count() == 1
    forged = start(chat, user={**user, "hmac": "0" * 64})
    assert forged["visitor"]["verified"] is False and forged["messages"] == []

    chat.settings = {**chat.settings, "require_identity": True}
    chat.save()
    assert api(chat, "session", {}).status_code == 403
    assert api(chat, "session", {"user": {**user, "hmac": "0" * 64}}).status_code == 403
    assert api(chat, "session", {"user": user}).status_code == 200


def test_an_agent_reply_reaches_the_widget_and_becomes_read(chat, owner):
    token = start(chat)["token"]
    shown = say(chat, token, "Hello?", "c-1").json()["message"]
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    reply = outbound.reply(conversation, author=owner, text="Hi! How can I help?")
    note = outbound.reply(conversation, author=owner, text="internal", kind="note")
    outbound.deliver(reply.pk)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT and reply.external_id == f"lc_{reply.pk}"
    polled = api(chat, f"messages?after={shown['id']}", method="get", **{"X-Loket-Visitor": token})
    texts = [m["text"] for m in polled.json()["messages"]]
    assert texts == ["Hi! How can I help?"] and note.text not in json.dumps(polled.json())
    assert api(chat, "read", {"token": token, "up_to": reply.pk}).status_code == 200
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.READ


def test_messages_are_rate_limited_per_visitor(chat, settings):
    settings.LOKET_WIDGET_MESSAGES_PER_MINUTE = 3
    token = start(chat)["token"]
    codes = [say(chat, token, f"spam {n}", f"c-{n}").status_code for n in range(5)]
    assert codes[:3] == [201, 201, 201] and codes[3] == 429
    limited = say(chat, token, "more", "c-9")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0


def test_bad_input_gets_clear_errors(chat):
    token = start(chat)["token"]
    assert say(chat, token, "", "c-1").status_code == 400
    assert say(chat, token, "x" * 6000, "c-1").status_code == 413
    response = Client().post(
        f"/widget/{chat.uuid}/api/messages", b"not json", content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert api(chat, "session", {}).status_code == 200
    assert Client().post("/widget/not-a-uuid/api/session").status_code == 404
    chat.is_active = False
    chat.save()
    assert api(chat, "session", {}).status_code == 404


def test_a_signed_in_users_session_does_not_resume_without_that_user(chat):
    signature = hmac.new(chat.shown_secret.encode(), b"42", hashlib.sha256).hexdigest()
    user = {"id": "42", "name": "Ann", "hmac": signature}
    first = start(chat, user=user)
    say(chat, first["token"], "My private question", "c-1")
    # The next person on the same computer: the stored token alone shows nothing of Ann's.
    shared = start(chat, token=first["token"])
    assert shared["visitor"]["verified"] is False and shared["messages"] == []
    again = start(chat, token=first["token"], user=user)
    assert [m["text"] for m in again["messages"]] == ["My private question"]


def test_agents_see_the_visitors_page_browser_and_pages_visited(chat, owner):
    token = start(chat)["token"]
    prechat = api(chat, "prechat", {"token": token, "name": "Ann", "email": "ann@example.com"})
    token = prechat.json()["token"]
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    for n, page in enumerate(
        [
            {
                "url": "https://www.shop.example/shoes",
                "title": "Shoes",
                "referrer": "https://search.example/",
            },
            {"url": "javascript:alert(1)", "title": "Evil"},
            {"url": "https://www.shop.example/checkout", "title": "Checkout"},
        ]
    ):
        response = api(
            chat,
            "messages",
            {"token": token, "client_id": f"c-{n}", "text": f"question {n}", "page": page},
            **{"User-Agent": firefox, "Accept-Language": "nl-NL,nl;q=0.9"},
        )
        assert response.status_code == 201
    conversation = Conversation.objects.get(channel=chat)
    client = Client()
    client.force_login(owner.user)
    pane = client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert "Checkout" in pane and "https://www.shop.example/shoes" in pane
    assert "Firefox 133 on Windows" in pane and "nl-NL" in pane
    assert "javascript:" not in pane


def test_an_agent_opening_the_chat_marks_the_visitors_messages_seen(chat, owner):
    token = start(chat)["token"]
    shown = say(chat, token, "Anyone there?", "c-1").json()["message"]
    assert shown["status"] == ""
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    client = Client()
    client.force_login(owner.user)
    assert client.get(f"/w/acme/inbox/{conversation.number}/pane/").status_code == 200
    history = start(chat, token=token)["messages"]
    assert history[0]["status"] == "read"
