"""Replies through the real outbound path (outbound.reply, then the worker) to a FakeProvider
playing api.twilio.com, and Twilio's status callbacks through the real webhook endpoint."""

from __future__ import annotations

import socket
import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import connection

from loket.inbox.models import DeliveryStatus, InboundEvent, InboundStatus, Message
from loket.inbox.services import outbound
from tests.connectors.providers import Answer, run_tasks

from .conftest import (
    CUSTOMER,
    JPEG,
    MESSAGES,
    NUMBER,
    SID,
    basic,
    make_channel,
    new_sid,
    sample,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # the worker runs as in production


def _conversation(channel, post_twilio, **changes):
    pairs = sample("inbound_sms", MessageSid=new_sid(), **changes)
    assert post_twilio(channel, pairs).status_code == 200
    return Message.objects.filter(channel=channel).latest("pk").conversation


def _status(sid: str, status: str, **extra: str):
    return sample(
        "status_callback",
        MessageSid=sid,
        SmsSid=sid,
        MessageStatus=status,
        SmsStatus=status,
        **extra,
    )


def _sent_form(provider) -> list[tuple[str, str]]:
    return parse_qsl(
        provider.requests_to("POST", MESSAGES)[-1].body.decode(), keep_blank_values=True
    )


def test_a_reply_is_posted_as_twilio_documents_it_and_its_sid_stored(
    channel, provider, post_twilio, owner, settings
):
    conversation = _conversation(channel, post_twilio)
    message = outbound.reply(conversation, author=owner, text="Ja, u kunt hem om 16:00 ophalen.")
    run_tasks(retries_due=True)

    (request,) = provider.requests_to("POST", MESSAGES)
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["authorization"] == basic()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _sent_form(provider) == [
        ("To", CUSTOMER),
        ("From", NUMBER),
        ("Body", "Ja, u kunt hem om 16:00 ophalen."),
        ("StatusCallback", f"{settings.LOKET_PUBLIC_URL}/hooks/twilio/{channel.uuid}/"),
    ]
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id.startswith("SM") and len(message.external_id) == 34


def test_a_messaging_service_channel_sends_through_the_service(
    workspace, provider, post_twilio, owner
):
    service = "MG" + "0f" * 16
    channel = make_channel(workspace, phone_number="", messaging_service_sid=service)
    outbound.reply(_conversation(channel, post_twilio), author=owner, text="Hallo")
    run_tasks(retries_due=True)
    form = dict(_sent_form(provider))
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


def test_a_whatsapp_contact_is_answered_from_the_whatsapp_address(
    channel, provider, post_twilio, owner
):
    conversation = _conversation(channel, post_twilio, From=f"whatsapp:{CUSTOMER}")
    outbound.reply(conversation, author=owner, text="Hallo")
    run_tasks(retries_due=True)
    form = dict(_sent_form(provider))
    assert (form["To"], form["From"]) == (f"whatsapp:{CUSTOMER}", f"whatsapp:{NUMBER}")


def test_files_go_out_as_public_links_twilio_can_fetch(
    channel, provider, post_twilio, owner, settings, client
):
    conversation = _conversation(channel, post_twilio)
    outbound.reply(
        conversation,
        author=owner,
        text="De offerte",
        attachments=[outbound.OutgoingFile("schade.jpg", "image/jpeg", JPEG)],
    )
    run_tasks(retries_due=True)
    form = _sent_form(provider)
    (media_url,) = [value for name, value in form if name == "MediaUrl"]
    assert media_url.startswith(f"{settings.LOKET_PUBLIC_URL}/media/")
    assert media_url.endswith("/schade.jpg")
    assert Message.objects.get(direction="out").status == DeliveryStatus.SENT

    served = client.get(urlsplit(media_url).path)  # what Twilio's fetch gets
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == JPEG
    assert served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"].startswith("sandbox")


def test_a_status_callback_marks_the_message_delivered(channel, provider, post_twilio, owner):
    message = outbound.reply(_conversation(channel, post_twilio), author=owner, text="Klaar")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    response = post_twilio(channel, _status(message.external_id, "delivered"))
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == DeliveryStatus.DELIVERED
    # A late "sent" does not move it back.
    assert post_twilio(channel, _status(message.external_id, "sent")).status_code == 200
    message.refresh_from_db()
    assert message.status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("30003", "could not be reached"),
        ("30004", "blocked"),
        ("30005", "unknown"),
        ("30006", "landline"),
        ("30007", "filtered"),
        ("30008", "did not give"),
        ("21610", "unsubscribed"),
    ],
)
def test_undelivered_is_failed_with_the_error_in_plain_words(
    channel, provider, post_twilio, owner, code, words
):
    message = outbound.reply(_conversation(channel, post_twilio), author=owner, text="Klaar")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    post_twilio(channel, _status(message.external_id, "undelivered", ErrorCode=code))
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert words in message.error
    assert f"Twilio error {code}" in message.error


def test_a_callback_arriving_before_the_send_call_returned_still_ends_delivered(
    channel, provider, post_twilio, owner
):
    conversation = _conversation(channel, post_twilio)
    sid = new_sid()
    hold = threading.Event()
    provider.then("POST", MESSAGES, Answer(201, {"sid": sid, "status": "queued"}, hold=hold))
    message = outbound.reply(conversation, author=owner, text="Uw auto is klaar.")
    seen = len(provider.requests)

    def work():
        try:
            run_tasks()
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert provider.wait_for(seen + 1)  # Twilio has the message; its answer is held
        # Twilio reports progress while our send call still waits for its answer.
        assert post_twilio(channel, _status(sid, "sent")).status_code == 200
        assert post_twilio(channel, _status(sid, "delivered")).status_code == 200
        waiting = InboundEvent.objects.filter(status=InboundStatus.FAILED)
        assert waiting.count() == 2  # stored, to be matched once the send call returns
        assert Message.objects.get(pk=message.pk).status == DeliveryStatus.SENDING
    finally:
        hold.set()
        worker.join(30)
    assert not worker.is_alive()
    # The early callbacks named a message not yet known by that id: the journal keeps them and
    # tries them again (the worker above may already have), never moving the status backwards.
    run_tasks(retries_due=True)

    message.refresh_from_db()
    assert (message.status, message.external_id) == (DeliveryStatus.DELIVERED, sid)
    assert not InboundEvent.objects.filter(status=InboundStatus.FAILED).exists()


def test_429_with_retry_after_is_retried_then_sent(channel, provider, post_twilio, owner):
    busy = {"code": 20429, "message": "Too Many Requests", "status": 429}
    provider.then("POST", MESSAGES, Answer(429, busy, headers={"Retry-After": "7"}))
    message = outbound.reply(_conversation(channel, post_twilio), author=owner, text="Hallo")
    run_tasks()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert "limiting" in message.error

    run_tasks(retries_due=True)

    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert len(provider.requests_to("POST", MESSAGES)) == 2


def test_a_server_error_is_retried_then_sent(channel, provider, post_twilio, owner):
    provider.then("POST", MESSAGES, Answer(500, {"message": "Internal Server Error"}))
    message = outbound.reply(_conversation(channel, post_twilio), author=owner, text="Hallo")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert len(provider.requests_to("POST", MESSAGES)) == 2


def test_twilio_out_of_reach_is_retried_later(channel, provider, post_twilio, owner, settings):
    conversation = _conversation(channel, post_twilio)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.LOKET_TWILIO_API_URL = f"http://127.0.0.1:{closed_port}"
    message = outbound.reply(conversation, author=owner, text="Hallo")
    run_tasks()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert message.error.startswith("Retrying: could not reach 127.0.0.1")


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (400, 21211, "The recipient's phone number is not valid. (Twilio error 21211)"),
        (400, 21408, "Sending to this country is not enabled"),
        (400, 21610, "they replied STOP"),
        (400, 21614, "not a mobile number"),
        (401, 20003, "the account SID or auth token is wrong"),
        (400, 21999, "Twilio: Something odd (error 21999)"),
    ],
)
def test_a_refused_message_fails_with_the_reason_in_plain_words(
    channel, provider, post_twilio, owner, status, code, words
):
    error = {
        "code": code,
        "message": "Something odd",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    provider.then("POST", MESSAGES, Answer(status, error))
    message = outbound.reply(_conversation(channel, post_twilio), author=owner, text="Hallo")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert words in message.error
    assert len(provider.requests_to("POST", MESSAGES)) == 1


def test_whatsapp_through_twilio_replies_places_and_buttons_keep_their_meaning(
    channel, provider, post_twilio, owner
):
    conversation = _conversation(channel, post_twilio, From=f"whatsapp:{CUSTOMER}")
    ours = outbound.reply(conversation, author=owner, text="Wanneer wilt u langskomen?")
    run_tasks(retries_due=True)
    ours.refresh_from_db()

    located = sample(
        "inbound_sms",
        MessageSid=new_sid(),
        From=f"whatsapp:{CUSTOMER}",
        Body="",
        Latitude="52.3731",
        Longitude="4.8922",
        Label="Garage Centrum",
        Address="Damrak 1, Amsterdam",
        OriginalRepliedMessageSid=ours.external_id,
    )
    assert post_twilio(channel, located).status_code == 200
    place = Message.objects.filter(direction="in").latest("pk")
    assert place.text == "Garage Centrum, Damrak 1, Amsterdam"
    assert place.data["location"]["latitude"] == 52.3731
    assert place.data["reply_to"]["id"] == ours.pk

    button = sample(
        "inbound_sms",
        MessageSid=new_sid(),
        From=f"whatsapp:{CUSTOMER}",
        Body="Morgen",
        ButtonText="Morgen",
        ButtonPayload="slot-tomorrow",
    )
    assert post_twilio(channel, button).status_code == 200
    chosen = Message.objects.filter(direction="in").latest("pk")
    assert chosen.data["choice"] == {"id": "slot-tomorrow", "title": "Morgen"}
