"""WhatsApp notifications through the real webhook endpoint: handshake, signatures, every
message kind, batching, duplicates, reactions, replies and media downloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    Contact,
    Conversation,
    Direction,
    InboundEvent,
    InboundStatus,
    Message,
)
from tests.connectors.providers import run_tasks
from tests.connectors.whatsapp import support
from tests.connectors.whatsapp.support import CUSTOMER, change, message, notification, post


def handshake(channel, **query):
    return Client().get(f"/hooks/whatsapp/{channel.uuid}/", query)


def test_the_subscription_handshake_answers_the_challenge(channel):
    ok = handshake(
        channel,
        **{"hub.mode": "subscribe", "hub.verify_token": support.VERIFY_TOKEN, "hub.challenge": "8"},
    )
    assert ok.status_code == 200
    assert ok.content == b"8"
    assert ok["Content-Type"].startswith("text/plain")
    wrong = handshake(
        channel,
        **{"hub.mode": "subscribe", "hub.verify_token": "not-the-token", "hub.challenge": "8"},
    )
    assert wrong.status_code == 403
    assert b"8" not in wrong.content
    no_mode = handshake(channel, **{"hub.verify_token": support.VERIFY_TOKEN, "hub.challenge": "8"})
    assert no_mode.status_code == 403


def test_a_text_message_is_stored_with_its_contact(channel):
    response = post(channel, support.sample("text_message"))
    assert response.status_code == 200
    stored = Message.objects.get()
    assert stored.text == "Hoi! Mijn bestelling 10452 is nog niet binnen, kunnen jullie kijken?"
    assert stored.external_id == "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQUI0RTZGQTJFQkNFMTk4QTM5NgA="
    assert stored.sent_at == dt.datetime.fromtimestamp(1732521600, tz=dt.UTC)
    contact = stored.conversation.contact
    assert contact.name == "Sanne de Vries"
    assert contact.phone == "+31612345678"
    assert contact.identities.get().external_id == CUSTOMER
    assert Conversation.objects.get().channel == channel
    assert InboundEvent.objects.get().status == InboundStatus.PROCESSED


def test_an_image_is_stored_at_once_and_downloaded_with_the_token(channel, graph):
    assert post(channel, support.sample("image_message")).status_code == 200
    stored = Message.objects.get()
    assert stored.text == "Zo kwam het pakket aan"
    attachment = Attachment.objects.get(message=stored)
    assert attachment.status == AttachmentStatus.PENDING
    assert attachment.source_ref == "1003383421387256"
    assert attachment.content_type == "image/jpeg"
    assert graph.requests == []  # the message exists before the download ran

    run_tasks(retries_due=True)

    lookup, download = graph.requests
    assert (lookup.method, lookup.path) == ("GET", "/v21.0/1003383421387256")
    assert lookup.headers["authorization"] == f"Bearer {support.TOKEN}"
    assert download.path == "/whatsapp_business/attachments/"
    assert download.query == {"mid": ["1003383421387256"]}
    assert download.headers["authorization"] == f"Bearer {support.TOKEN}"
    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.STORED
    assert attachment.filename == "image.jpg"
    with attachment.file.open("rb") as stored_file:
        assert stored_file.read() == support.MEDIA_BYTES


def test_an_expired_media_id_fails_the_attachment_in_plain_words(channel, graph):
    graph.then(
        "GET",
        r"/v21\.0/\d+",
        support_error(404, 100, "Unsupported get request."),
    )
    post(channel, support.sample("image_message"))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.FAILED
    assert "Meta refused a parameter" in attachment.error
    assert Message.objects.get().text == "Zo kwam het pakket aan"


def support_error(status, code, text, **extra):
    from tests.connectors.providers import Answer

    error = {"message": text, "type": "OAuthException", "code": code, "fbtrace_id": "Az1", **extra}
    return Answer(status, {"error": error})


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, ""])
def test_a_bad_or_missing_signature_is_401_and_stores_nothing(channel, signature):
    response = post(channel, support.sample("text_message"), signature=signature)
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()
    assert not Contact.objects.exists()


def test_a_signature_with_another_secret_is_401(channel):
    response = post(channel, support.sample("text_message"), secret="another-apps-secret")
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


def test_a_repeated_delivery_is_one_message(channel):
    assert post(channel, support.sample("text_message")).status_code == 200
    assert post(channel, support.sample("text_message")).status_code == 200
    assert Message.objects.count() == 1
    assert sorted(InboundEvent.objects.values_list("status", flat=True)) == [
        InboundStatus.DUPLICATE,
        InboundStatus.PROCESSED,
    ]


def test_a_batched_notification_is_processed_whole(channel, graph, owner):
    from loket.inbox.services import outbound

    post(channel, support.sample("text_message"))
    conversation = Conversation.objects.get()
    reply = outbound.reply(conversation, author=owner, text="We kijken ernaar.")
    run_tasks(retries_due=True)
    reply.refresh_from_db()

    other = "4915112345678"
    changes = [
        change([message(content={"body": f"Sanne {i}"}) for i in range(3)]),
        change(
            [message(content={"body": f"Jonas {i}"}, sender=other) for i in range(3)],
            contacts=[{"profile": {"name": "Jonas Weber"}, "wa_id": other}],
        ),
        change(statuses=[support.status(reply.external_id, "delivered")]),
    ]
    response = post(channel, notification(*changes, entries=2))
    assert response.status_code == 200
    texts = set(Message.objects.filter(direction=Direction.INBOUND).values_list("text", flat=True))
    assert {"Jonas 0", "Jonas 1", "Jonas 2"} <= texts
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1 + 6
    reply.refresh_from_db()
    assert reply.status == "delivered"
    jonas = Contact.objects.get(name="Jonas Weber")
    assert jonas.phone == "+4915112345678"
    assert Conversation.objects.count() == 2
    assert InboundEvent.objects.order_by("pk").last().status == InboundStatus.PROCESSED


def test_a_reaction_shows_on_its_message_and_can_be_taken_back(channel):
    first = message(content={"body": "Is het al verzonden?"})
    post(channel, notification(change([first])))
    react = message("reaction", {"message_id": first["id"], "emoji": "👍"})
    assert post(channel, notification(change([react]))).status_code == 200
    target = Message.objects.get(external_id=first["id"])
    assert target.data["reactions"] == {CUSTOMER: "👍"}
    assert Message.objects.count() == 1  # a reaction is not a message
    undo = message("reaction", {"message_id": first["id"]})
    post(channel, notification(change([undo])))
    target.refresh_from_db()
    assert target.data["reactions"] == {}


def test_a_swipe_reply_names_the_message_it_answers(channel):
    first = message(content={"body": "Bestelling 10452"})
    post(channel, notification(change([first])))
    answer = message(
        content={"body": "Deze bedoel ik"}, context={"from": CUSTOMER, "id": first["id"]}
    )
    post(channel, notification(change([answer])))
    stored = Message.objects.get(external_id=answer["id"])
    original = Message.objects.get(external_id=first["id"])
    assert stored.data["reply_to"]["id"] == original.pk
    assert "Bestelling 10452" in stored.data["reply_to"]["excerpt"]


LOCATION = {
    "latitude": 52.3731,
    "longitude": 4.8922,
    "name": "Dam",
    "address": "Dam 1, Amsterdam",
}
CARD = [
    {
        "name": {"formatted_name": "Pieter Bakker", "first_name": "Pieter"},
        "phones": [{"phone": "+31 6 98765432", "wa_id": "31698765432", "type": "CELL"}],
        "emails": [{"email": "pieter@example.nl", "type": "WORK"}],
    }
]


@pytest.mark.parametrize(
    ("item", "text", "data"),
    [
        (
            message("location", LOCATION),
            "Dam, Dam 1, Amsterdam",
            {"location": {**LOCATION, "url": ""}},
        ),
        (
            message("contacts", None, contacts=CARD),
            "Pieter Bakker: +31 6 98765432, pieter@example.nl",
            {
                "contacts": [
                    {
                        "name": "Pieter Bakker",
                        "phones": ["+31 6 98765432"],
                        "emails": ["pieter@example.nl"],
                    }
                ]
            },
        ),
        (
            message(
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "track", "title": "Track order"}},
            ),
            "Track order",
            {"choice": {"id": "track", "title": "Track order"}},
        ),
        (
            message(
                "interactive",
                {
                    "type": "list_reply",
                    "list_reply": {"id": "r2", "title": "Retour", "description": "Send it back"},
                },
            ),
            "Retour",
            {"choice": {"id": "r2", "title": "Retour", "description": "Send it back"}},
        ),
        (
            message("button", {"payload": "YES_DELIVERY", "text": "Ja, graag"}),
            "Ja, graag",
            {"choice": {"id": "YES_DELIVERY", "title": "Ja, graag"}},
        ),
        (
            message(
                "unsupported",
                None,
                errors=[
                    {
                        "code": 131051,
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "error_data": {"details": "Message type is currently not supported."},
                    }
                ],
            ),
            "WhatsApp does not support this kind of message.",
            {"unsupported": "unsupported"},
        ),
        (
            message("order", {"catalog_id": "1", "product_items": []}),
            "order",
            {"unsupported": "order"},
        ),
        (
            message(
                "system",
                {
                    "body": "Sanne changed their phone number to a new number 31687654321",
                    "new_wa_id": "31687654321",
                    "type": "user_changed_number",
                },
            ),
            "Sanne changed their phone number",
            {"provider": {"system": {"type": "user_changed_number", "new_wa_id": "31687654321"}}},
        ),
    ],
    ids=[
        "location",
        "contacts",
        "button_reply",
        "list_reply",
        "button",
        "unsupported",
        "order",
        "system",
    ],
)
def test_every_kind_of_message_is_kept_readable(channel, item, text, data):
    assert post(channel, notification(change([item]))).status_code == 200
    stored = Message.objects.get()
    assert text in stored.text
    for key, value in data.items():
        assert stored.data[key] == value


@pytest.mark.parametrize(
    ("kind", "content", "filename", "content_type", "data"),
    [
        (
            "audio",
            {"id": "2001", "mime_type": "audio/ogg; codecs=opus", "voice": True},
            "voice-message.ogg",
            "audio/ogg; codecs=opus",
            {"voice": True},
        ),
        (
            "video",
            {"id": "2002", "mime_type": "video/mp4", "caption": "Kijk"},
            "video.mp4",
            "video/mp4",
            {},
        ),
        (
            "document",
            {"id": "2003", "mime_type": "application/pdf", "filename": "factuur-10452.pdf"},
            "factuur-10452.pdf",
            "application/pdf",
            {},
        ),
        (
            "sticker",
            {"id": "2004", "mime_type": "image/webp", "animated": False},
            "sticker.webp",
            "image/webp",
            {"sticker": True},
        ),
    ],
)
def test_media_kinds_become_attachments_to_fetch(
    channel, kind, content, filename, content_type, data
):
    post(channel, notification(change([message(kind, content)])))
    stored = Message.objects.get()
    attachment = stored.attachments.get()
    assert attachment.source_ref == content["id"]
    assert attachment.filename == filename
    assert attachment.content_type == content_type
    assert stored.text == content.get("caption", "")
    for key, value in data.items():
        assert stored.data[key] == value


def test_a_change_for_another_number_is_ignored(channel):
    other = notification(change([message()], number_id="999999999999999"))
    assert post(channel, other).status_code == 200
    assert not Message.objects.exists()
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED


def test_other_fields_and_objects_are_acknowledged_and_ignored(channel):
    templates = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": support.ACCOUNT_ID,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_name": "order_update"},
                    }
                ],
            }
        ],
    }
    assert post(channel, templates).status_code == 200
    assert post(channel, {"object": "page", "entry": []}).status_code == 200
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundStatus.IGNORED}


def test_malformed_json_is_400(channel):
    response = post(channel, None, raw=b'{"object": "whatsapp_business_account", ')
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_the_lean_asgi_route_serves_the_handshake_and_deliveries(channel):
    import httpx
    from asgiref.sync import async_to_sync

    from loket.asgi import application
    from loket.connectors.meta import webhooks

    body = json.dumps(support.sample("text_message")).encode()
    path = f"/hooks/whatsapp/{channel.uuid}/"

    async def calls():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            query = {
                "hub.mode": "subscribe",
                "hub.verify_token": support.VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            }
            challenge = await c.get(path, params=query)
            signed = {"X-Hub-Signature-256": webhooks.signature(support.APP_SECRET, body)}
            delivered = await c.post(path, content=body, headers=signed)
            forged = await c.post(path, content=body, headers={"X-Hub-Signature-256": "sha256=0"})
            return challenge, delivered, forged

    challenge, delivered, forged = async_to_sync(calls)()
    assert (challenge.status_code, challenge.text) == (200, "1158201444")
    assert delivered.status_code == 200
    assert forged.status_code == 401
    assert Message.objects.get().conversation.contact.name == "Sanne de Vries"


def test_an_edit_and_a_deletion_change_the_customers_message(channel):
    first = message(content={"body": "Bestelling 10425"})
    post(channel, notification(change([first])))
    edit = message(
        "edit",
        {
            "original_message_id": first["id"],
            "message": {"type": "text", "text": {"body": "Bestelling 10452"}},
        },
    )
    assert post(channel, notification(change([edit]))).status_code == 200
    stored = Message.objects.get()
    assert stored.text == "Bestelling 10452"
    assert stored.data["edited"]["previous"] == ["Bestelling 10425"]
    revoke = message("revoke", {"original_message_id": first["id"]})
    assert post(channel, notification(change([revoke]))).status_code == 200
    stored.refresh_from_db()
    assert stored.data["deleted_at"]
    assert Message.objects.count() == 1
