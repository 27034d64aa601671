"""The live-chat widget's backend: sessions with signed tokens, messages through the journal,
identity by HMAC, the pre-chat form, replies and read receipts, abuse limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from loket.connectors.livechat import widget
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
from loket.inbox.services.contacts import merge_contacts

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
        (
            {"prechat": {"fields": [{"name": "order"}, {"name": "order", "type": "tel"}]}},
            "asked twice",
        ),
        ({"prechat": {"fields": [{"name": "email", "type": "text"}]}}, "contact's own field"),
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


def _pane(owner, conversation) -> str:
    client = Client()
    client.force_login(owner.user)
    return client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()


def _contact_of(chat, token: str) -> Contact | None:
    key = widget.visitor_from_token(chat, token).key
    identity = ContactIdentity.objects.filter(channel=chat, external_id=key).first()
    return Contact.objects.get(pk=identity.contact_id) if identity else None


def test_custom_pre_chat_answers_reach_the_contact_and_the_agents_sidebar(chat, owner):
    token = start(chat)["token"]
    answered = api(
        chat,
        "prechat",
        {
            "token": token,
            "name": "Ann",
            "email": "ann@example.com",
            # Only the channel's own custom fields become attributes: not a field the form
            # does not have, nor a standard field slipped in among the custom ones.
            "fields": {"order": "  NL123  ", "coupon": "FREE", "email": "mallory@example.com"},
        },
    )
    assert answered.status_code == 200, answered.content
    token = answered.json()["token"]
    contact = _contact_of(chat, token)  # on the contact at once, before any message
    assert contact.attributes == {"order": "NL123"}
    assert contact.email == "ann@example.com"

    shown = say(chat, token, "Where is my order?", "c-1").json()["message"]
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    pane = _pane(owner, conversation)
    assert "<dt>order</dt><dd>NL123</dd>" in pane

    # A later answer replaces the earlier one, cut to the attribute's size.
    again = api(chat, "prechat", {"token": token, "name": "Ann", "email": "ann@example.com",
                                  "fields": {"order": "N" * 700}})  # fmt: skip
    assert again.status_code == 200
    contact.refresh_from_db()
    assert contact.attributes == {"order": "N" * widget.ATTRIBUTE_TEXT_MAX}


def test_set_attributes_are_stored_on_the_contact_within_bounds(chat, owner):
    first = start(
        chat,
        attributes={
            "plan": " gold ",
            "seats": 5,
            "trial": True,
            "ratio": 1.5,
            "empty": "",
            "long": "y" * 600,
            "bad key": "x",  # not a key: a space
            "_private": "x",  # must start with a letter
            "k" * 41: "x",  # too long a key
            "nested": {"a": 1},  # only text, numbers and true/false
            "list": [1, 2],
            "nothing": None,
            "huge": 2**60,
        },
    )
    token = first["token"]
    # A page view creates no contact: the attributes wait for the first message.
    assert _contact_of(chat, token) is None
    shown = say(chat, token, "Hello", "c-1").json()["message"]
    contact = _contact_of(chat, token)
    assert contact.attributes == {
        "plan": "gold",
        "seats": 5,
        "trial": True,
        "ratio": 1.5,
        "empty": "",
        "long": "y" * widget.ATTRIBUTE_TEXT_MAX,
    }
    # Once there is a contact, a session call's attributes are stored at once; the latest
    # value wins on an anonymous visitor's contact.
    start(chat, token=token, attributes={"plan": "platinum", "cart": 49.95})
    contact.refresh_from_db()
    assert contact.attributes["plan"] == "platinum" and contact.attributes["cart"] == 49.95
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    pane = _pane(owner, conversation)
    assert "<dt>plan</dt><dd>platinum</dd>" in pane and "<dt>cart</dt><dd>49.95</dd>" in pane

    # At most 20 keys per call, and new keys only while the contact has fewer than 50.
    many = start(chat, token=token, attributes={f"a{n:02}": n for n in range(30)})
    assert many["token"]
    contact.refresh_from_db()
    assert sorted(k for k in contact.attributes if k.startswith("a")) == [
        f"a{n:02}" for n in range(20)
    ]
    for batch in range(3):
        start(chat, token=token, attributes={f"b{batch}{n:02}": n for n in range(20)})
    contact.refresh_from_db()
    assert len(contact.attributes) == widget.ATTRIBUTES_PER_CONTACT
    start(chat, token=token, attributes={"plan": "silver", "brand_new": 1})
    contact.refresh_from_db()
    assert contact.attributes["plan"] == "silver" and "brand_new" not in contact.attributes

    # Attributes that are no dict at all, or NaN, never fail the session.
    assert api(chat, "session", {"token": token, "attributes": ["x"]}).status_code == 200
    body = '{"token": "TOKEN", "attributes": {"n": NaN, "i": Infinity}}'.replace("TOKEN", token)
    response = Client().post(
        f"/widget/{chat.uuid}/api/session", body, content_type="application/json"
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert "n" not in contact.attributes and "i" not in contact.attributes


def test_a_verified_sessions_attributes_win_over_an_unverified_ones(chat, owner):
    signature = hmac.new(chat.shown_secret.encode(), b"42", hashlib.sha256).hexdigest()
    user = {"id": "42", "name": "Ann", "email": "ann@example.com", "hmac": signature}
    signed_in = start(chat, user=user, attributes={"plan": "gold"})
    say(chat, signed_in["token"], "Account question", "c-1")
    ann = _contact_of(chat, signed_in["token"])
    assert ann.attributes == {"plan": "gold"}

    # Ann also chatted anonymously, and an agent merged that visitor into her contact.
    anonymous = start(chat)["token"]
    say(chat, anonymous, "Hi", "c-2")
    merge_contacts(_contact_of(chat, anonymous), ann, actor=owner)
    assert _contact_of(chat, anonymous).pk == ann.pk

    # The unsigned page may add a key, but never change what the signed-in session set.
    start(chat, token=anonymous, attributes={"plan": "free", "color": "red"})
    ann.refresh_from_db()
    assert ann.attributes == {"plan": "gold", "color": "red"}
    # A pre-chat answer from the unsigned page is held to the same rule.
    chat.settings = {**chat.settings, "prechat": {**chat.settings["prechat"], "fields": [
        {"name": "plan", "label": "Plan", "type": "text", "required": False}]}}  # fmt: skip
    chat.save()
    assert api(chat, "prechat", {"token": anonymous, "fields": {"plan": "free"}}).status_code == 200
    ann.refresh_from_db()
    assert ann.attributes["plan"] == "gold"
    # The verified session changes it, also what the unsigned page added.
    changed = {"plan": "platinum", "color": "blue"}
    start(chat, user=user, token=signed_in["token"], attributes=changed)
    ann.refresh_from_db()
    assert ann.attributes == {"plan": "platinum", "color": "blue"}


def test_the_api_refuses_browsers_on_other_websites(chat, settings):
    settings.LOKET_PUBLIC_URL = "https://support.loket.example"
    token = start(chat)["token"]

    def session(**headers):
        return api(chat, "session", {"token": token}, **headers)

    refused = session(Origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert session(Origin="https://www.shop.example.evil.example").status_code == 403
    assert session(Origin="http://www.shop.example").status_code == 403  # another scheme
    assert session(Origin="https://support.loket.example").status_code == 200  # the frame's
    assert session(Origin="http://testserver").status_code == 200  # same origin as the request
    assert session(Origin="https://www.shop.example").status_code == 200  # an allowed website
    assert session().status_code == 200  # no browser

    # Nothing a foreign page sends is stored.
    sent = api(chat, "messages", {"token": token, "client_id": "c-1", "text": "spam"},
               Origin="https://evil.example")  # fmt: skip
    assert sent.status_code == 403 and not Message.objects.filter(channel=chat).exists()
    polled = api(chat, "messages", method="get", Origin="https://evil.example",
                 **{"X-Loket-Visitor": token})  # fmt: skip
    assert polled.status_code == 403
    upload = Client().post(
        f"/widget/{chat.uuid}/api/files",
        {"token": token, "client_id": "f-1", "file": SimpleUploadedFile("a.txt", b"hi")},
        headers={"Origin": "https://evil.example"},
    )
    assert upload.status_code == 403

    # "Origin: null" (what the frame's own POSTs may say, and a sandboxed page elsewhere):
    # only what no other site can send without a CORS preflight passes.
    url = f"/widget/{chat.uuid}/api/messages"
    body = json.dumps({"token": token, "client_id": "c-2", "text": "hi"})
    null = {"Origin": "null"}
    plain = Client().post(url, body, content_type="text/plain", headers=null)
    assert plain.status_code == 403
    form = Client().post(
        f"/widget/{chat.uuid}/api/files",
        {"token": token, "client_id": "f-2", "file": SimpleUploadedFile("a.txt", b"hi")},
        headers=null,
    )
    assert form.status_code == 403
    assert not Message.objects.filter(channel=chat).exists()
    as_json = Client().post(url, body, content_type="application/json", headers=null)
    assert as_json.status_code == 201
    with_header = Client().post(
        url,
        json.dumps({"token": token, "client_id": "c-3", "text": "hi"}),
        content_type="text/plain",
        headers={**null, "X-Loket-Visitor": token},
    )
    assert with_header.status_code == 201

    # An empty allow-list lets any site embed the frame, not talk to the API itself.
    chat.settings = {**chat.settings, "allowed_origins": []}
    chat.save()
    assert session(Origin="https://www.shop.example").status_code == 403
    assert session(Origin="https://support.loket.example").status_code == 200


def test_messages_are_rate_limited_per_ip(chat, settings, monkeypatch):
    settings.LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP = 3
    frozen = time.time()  # one rate window, however long the test takes
    monkeypatch.setattr(widget, "time", SimpleNamespace(time=lambda: frozen))

    def say_from(ip: str, n: int):
        token = start(chat)["token"]  # a new visitor each time: only the address is the same
        return Client(REMOTE_ADDR=ip).post(
            f"/widget/{chat.uuid}/api/messages",
            json.dumps({"token": token, "client_id": f"c-{n}", "text": f"hello {n}"}),
            content_type="application/json",
        )

    codes = [say_from("203.0.113.7", n).status_code for n in range(3)]
    assert codes == [201, 201, 201]
    limited = say_from("203.0.113.7", 3)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0
    assert say_from("203.0.113.8", 4).status_code == 201  # another address is not limited
    assert Message.objects.filter(channel=chat).count() == 4
