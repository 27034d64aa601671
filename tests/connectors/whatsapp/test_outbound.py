"""Replies through the real outbound path (outbound.reply, then the send task) to a fake Graph
API: the documented request bodies, retries, permanent errors in plain words, the 24-hour
window, templates, files, and statuses that overtake the send."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from loket.inbox.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import outbound, templates
from tests.connectors.providers import Answer, run_tasks
from tests.connectors.whatsapp import support
from tests.connectors.whatsapp.support import CUSTOMER, change, notification, post

MESSAGES = r"/v21\.0/\d+/messages"
SENT_ID = "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJCQTk1RDVGQzQ3NkEyMDg1QzgA"
BEARER = f"Bearer {support.TOKEN}"


def graph_error(status: int, code: int, message: str, **extra) -> Answer:
    headers = extra.pop("headers", {})
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b"}
    return Answer(status, {"error": {**error, **extra}}, headers=headers)


@pytest.fixture
def conversation(channel):
    assert post(channel, support.sample("text_message")).status_code == 200
    return Conversation.objects.get()


def sends(graph):
    return graph.requests_to("POST", MESSAGES)


def test_a_reply_is_the_documented_request_and_records_the_id(conversation, owner, graph):
    graph.then("POST", MESSAGES, Answer(200, support.sample("send_text_response")))
    reply = outbound.reply(
        conversation, author=owner, text="Hoi Sanne, ik kijk het meteen voor je na."
    )
    run_tasks(retries_due=True)

    (request,) = sends(graph)
    assert request.path == f"/v21.0/{support.NUMBER_ID}/messages"
    assert request.json() == support.sample("send_text_request")
    assert request.headers["authorization"] == BEARER
    assert request.headers["content-type"] == "application/json"
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert reply.external_id == SENT_ID


def test_delivery_and_read_statuses_move_forward_only(conversation, owner, graph, channel):
    graph.then("POST", MESSAGES, Answer(200, support.sample("send_text_response")))
    reply = outbound.reply(conversation, author=owner, text="Verzonden!")
    run_tasks(retries_due=True)

    read = support.status(SENT_ID, "read", "1732521800")
    assert post(channel, notification(change(statuses=[read]))).status_code == 200
    assert post(channel, support.sample("status_delivered")).status_code == 200  # late
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.READ
    assert reply.status_changed_at == dt.datetime.fromtimestamp(1732521800, tz=dt.UTC)


def test_a_failed_status_says_why_in_plain_words(conversation, owner, graph, channel):
    graph.then("POST", MESSAGES, Answer(200, support.sample("send_text_response")))
    reply = outbound.reply(conversation, author=owner, text="Hallo?")
    run_tasks(retries_due=True)
    failed = support.status(
        SENT_ID,
        "failed",
        errors=[
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ],
    )
    post(channel, notification(change(statuses=[failed])))
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED
    assert "the number may not be on WhatsApp" in reply.error
    assert "131026" in reply.error


def test_a_status_that_overtakes_the_send_is_applied_once_the_send_returns(
    conversation, owner, graph, channel
):
    hold = threading.Event()
    graph.then("POST", MESSAGES, Answer(200, support.sample("send_text_response"), hold=hold))
    reply = outbound.reply(conversation, author=owner, text="Een moment.")

    def work():
        try:
            run_tasks()
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert graph.wait_for(1)  # the send is at Meta; its answer is held
        delivered = notification(change(statuses=[support.status(SENT_ID, "delivered")]))
        assert post(channel, delivered).status_code == 200
        event = InboundEvent.objects.order_by("pk").last()
        assert event.status == InboundStatus.FAILED  # unmatched for now: retried
    finally:
        hold.set()
        worker.join(30)
    run_tasks(retries_due=True)
    reply.refresh_from_db()
    assert reply.external_id == SENT_ID
    assert reply.status == DeliveryStatus.DELIVERED
    assert InboundEvent.objects.order_by("pk").last().status == InboundStatus.PROCESSED


def test_a_rate_limit_is_retried_after_the_wait_meta_asks(conversation, owner, graph):
    graph.then(
        "POST",
        MESSAGES,
        graph_error(429, 130429, "Rate limit hit", headers={"Retry-After": "7"}),
        Answer(200, support.sample("send_text_response")),
    )
    reply = outbound.reply(conversation, author=owner, text="Even geduld")
    run_tasks()
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.QUEUED
    assert "sending limit" in reply.error
    run_tasks(retries_due=True)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert reply.external_id == SENT_ID
    assert len(sends(graph)) == 2


def test_a_server_error_is_retried(conversation, owner, graph):
    graph.then(
        "POST",
        MESSAGES,
        Answer(500, {"error": {"message": "An unknown error occurred", "code": 1}}),
        Answer(200, support.sample("send_text_response")),
    )
    reply = outbound.reply(conversation, author=owner, text="Nog een keer")
    run_tasks(retries_due=True)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert len(sends(graph)) == 2
    assert sends(graph)[0].body == sends(graph)[1].body


def test_a_permanent_error_fails_the_reply_in_plain_words(conversation, owner, graph):
    graph.then(
        "POST",
        MESSAGES,
        graph_error(
            400,
            131026,
            "(#131026) Message undeliverable",
            error_data={"messaging_product": "whatsapp", "details": "Message Undeliverable."},
        ),
    )
    reply = outbound.reply(conversation, author=owner, text="Hallo")
    run_tasks(retries_due=True)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED
    assert "the number may not be on WhatsApp" in reply.error
    assert "(Meta error 131026)" in reply.error
    assert len(sends(graph)) == 1


def test_after_24_hours_free_text_is_refused_before_anything_is_sent(conversation, owner, graph):
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=25)
    )
    conversation.refresh_from_db()
    with pytest.raises(ValueError, match="only an approved message template"):
        outbound.reply(conversation, author=owner, text="Nog vragen?")
    run_tasks(retries_due=True)
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert graph.requests == []


def test_a_template_goes_out_after_24_hours_as_documented(conversation, owner, graph, channel):
    assert templates.sync(channel) == 2
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=25)
    )
    conversation.refresh_from_db()
    template = templates.approved(channel).get(name="order_update")
    filled = templates.fill(template, header=["10452"], body=["Sanne", "onderweg"])
    reply = outbound.reply(conversation, author=owner, text="", template=filled)
    run_tasks(retries_due=True)

    (request,) = sends(graph)
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "nl"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "10452"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Sanne"},
                        {"type": "text", "text": "onderweg"},
                    ],
                },
            ],
        },
    }
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert reply.text.startswith("Bestelling 10452\n\nHoi Sanne, je bestelling is onderweg.")


def test_a_template_without_variables_has_no_components(conversation, owner, graph, channel):
    templates.sync(channel)
    filled = templates.fill(templates.approved(channel).get(name="welcome_back"))
    outbound.reply(conversation, author=owner, text="", template=filled)
    run_tasks(retries_due=True)
    (request,) = sends(graph)
    assert request.json()["template"] == {"name": "welcome_back", "language": {"code": "en_US"}}


def test_template_sync_follows_pages_and_replaces_the_list(channel, graph):
    pattern = r"/v21\.0/\d+/message_templates"
    first, second = support.TEMPLATES
    after = f"{graph.url}/v21.0/{support.ACCOUNT_ID}/message_templates?limit=100&after=QVFIU"
    graph.then(
        "GET",
        pattern,
        Answer(200, {"data": [first], "paging": {"cursors": {"after": "QVFIU"}, "next": after}}),
        Answer(200, {"data": [second], "paging": {"cursors": {"before": "QVFIU"}}}),
    )
    assert templates.sync(channel) == 2
    first_request, second_request = graph.requests_to("GET", pattern)
    assert first_request.path == f"/v21.0/{support.ACCOUNT_ID}/message_templates"
    assert first_request.query["fields"] == ["name,language,status,category,components,id"]
    assert first_request.headers["authorization"] == BEARER
    assert second_request.query["after"] == ["QVFIU"]
    stored = {(t.name, t.language, t.category, t.external_id) for t in templates.approved(channel)}
    assert stored == {
        ("order_update", "nl", "UTILITY", "1290447338812711"),
        ("welcome_back", "en_US", "MARKETING", "1290447338812712"),
    }

    paused = {**second, "status": "PAUSED"}
    elsewhere = "https://graph.example.net/v21.0/1/message_templates?after=X"
    graph.then("GET", pattern, Answer(200, {"data": [paused], "paging": {"next": elsewhere}}))
    assert templates.sync(channel) == 1  # order_update is gone; the other host not asked
    assert not templates.approved(channel).exists()
    assert len(graph.requests_to("GET", pattern)) == 3


def test_files_are_uploaded_then_sent_with_the_text_as_caption(conversation, owner, graph):
    photo = outbound.OutgoingFile("pakbon.jpg", "image/jpeg", b"\xff\xd8\xff a receipt photo")
    reply = outbound.reply(conversation, author=owner, text="Is dit hem?", attachments=[photo])
    run_tasks(retries_due=True)

    (upload,) = graph.requests_to("POST", r"/v21\.0/\d+/media")
    assert upload.path == f"/v21.0/{support.NUMBER_ID}/media"
    assert upload.headers["authorization"] == BEARER
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in upload.body
    assert b'name="type"\r\n\r\nimage/jpeg' in upload.body
    assert b'filename="pakbon.jpg"' in upload.body
    assert b"a receipt photo" in upload.body
    (request,) = sends(graph)
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "image",
        "image": {"id": "4490709327384033", "caption": "Is dit hem?"},
    }
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT


def test_several_files_are_several_messages_with_one_status(conversation, owner, graph, channel):
    pdf = outbound.OutgoingFile("factuur.pdf", "application/pdf", b"%PDF-1.4 invoice")
    note = outbound.OutgoingFile("uitleg.ogg", "audio/ogg", b"OggS voice")
    reply = outbound.reply(conversation, author=owner, text="Zie bijlagen", attachments=[pdf, note])
    run_tasks(retries_due=True)

    first, second = (r.json() for r in sends(graph))
    assert first["type"] == "document"
    assert first["document"] == {
        "id": "4490709327384033",
        "caption": "Zie bijlagen",
        "filename": "factuur.pdf",
    }
    assert second["type"] == "audio"
    assert second["audio"] == {"id": "4490709327384033"}
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    later = reply.data["whatsapp_parts"][1]

    # The second part's delivery is not the reply's; its failure is.
    post(channel, notification(change(statuses=[support.status(later, "delivered")])))
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert InboundEvent.objects.order_by("pk").last().status == InboundStatus.IGNORED
    failed = support.status(
        later, "failed", errors=[{"code": 131053, "title": "Media upload error"}]
    )
    post(channel, notification(change(statuses=[failed])))
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED
    assert "could not accept the attached file" in reply.error


def test_a_failure_halfway_resends_only_what_is_missing(conversation, owner, graph):
    graph.then(
        "POST",
        MESSAGES,
        Answer(200, support.sent_answer("wamid.first")),
        Answer(503, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
        Answer(200, support.sent_answer("wamid.second")),
    )
    long_text = ("Een lange uitleg over de retourprocedure. " * 120).strip()
    assert len(long_text) > 4096
    reply = outbound.reply(conversation, author=owner, text=long_text)
    run_tasks(retries_due=True)
    bodies = [r.json()["text"]["body"] for r in sends(graph)]
    assert len(bodies) == 3
    assert bodies[1] == bodies[2]  # the first part went once
    assert bodies[0] + " " + bodies[1] == long_text
    assert all(len(body) <= 4096 for body in bodies)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT
    assert reply.external_id == "wamid.first"
    assert reply.data["whatsapp_parts"] == ["wamid.first", "wamid.second"]


def test_a_reply_to_a_message_quotes_it(conversation, owner, graph):
    customer_message = Message.objects.get(direction=Direction.INBOUND)
    outbound.reply(
        conversation,
        author=owner,
        text="Die bedoel je",
        data={"reply_to": {"id": customer_message.pk}},
    )
    run_tasks(retries_due=True)
    (request,) = sends(graph)
    assert request.json()["context"] == {"message_id": customer_message.external_id}
    assert request.json()["text"]["body"] == "Die bedoel je"


@pytest.mark.parametrize("recipient", [CUSTOMER, "4915199999999"])
def test_a_status_of_a_message_loket_did_not_send_is_not_retried(conversation, channel, recipient):
    # Another app on the same number, or a send that timed out and went again.
    foreign = support.status("wamid.sent.by.another.app", "delivered", recipient_id=recipient)
    assert post(channel, notification(change(statuses=[foreign]))).status_code == 200
    event = InboundEvent.objects.order_by("pk").last()
    assert event.status == InboundStatus.IGNORED
    assert event.error == ""


BSUID = "NL.1502576394655843"


def test_a_customer_known_only_by_their_user_id_is_answered_by_it(channel, owner, graph):
    # A user with a WhatsApp username whose number WhatsApp withholds (since 2026).
    hidden = support.message(content={"body": "Hoi, ik heb een vraag"}, sender=None)
    del hidden["from"]
    hidden["from_user_id"] = BSUID
    contacts = [{"profile": {"name": "Sanne", "username": "sanne.dv"}, "user_id": BSUID}]
    assert post(channel, notification(change([hidden], contacts=contacts))).status_code == 200
    stored = Message.objects.get()
    contact = stored.conversation.contact
    assert (contact.name, contact.phone) == ("Sanne", "")
    assert contact.identities.get().external_id == BSUID

    graph.then("POST", MESSAGES, Answer(200, support.sample("send_text_response")))
    reply = outbound.reply(stored.conversation, author=owner, text="Vertel!")
    run_tasks(retries_due=True)
    (request,) = sends(graph)
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": BSUID,
        "type": "text",
        "text": {"preview_url": False, "body": "Vertel!"},
    }
    read = support.status(SENT_ID, "read", recipient_user_id=BSUID)
    del read["recipient_id"]
    post(channel, notification(change(statuses=[read])))
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.READ


def test_a_number_and_a_user_id_together_keep_the_number_as_the_identity(channel):
    both = support.message(content={"body": "Hallo"}, from_user_id=BSUID)
    contacts = [{"profile": {"name": "Sanne de Vries"}, "wa_id": CUSTOMER, "user_id": BSUID}]
    post(channel, notification(change([both], contacts=contacts)))
    stored = Message.objects.get()
    assert stored.conversation.contact.identities.get().external_id == CUSTOMER
    assert stored.conversation.contact.phone == "+31612345678"
    assert stored.data["provider"] == {"user_id": BSUID}
