"""Replies through the real outbound path (outbound.reply, then the worker) to a fake
api.telegram.org: the documented request shapes, and Telegram's errors in plain words."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from loket.inbox.models import Conversation, DeliveryStatus, Message
from loket.inbox.services import outbound
from loket.inbox.services.outbound import OutgoingFile
from tests.connectors.providers import Answer, run_tasks
from tests.connectors.telegram.conftest import TOKEN, failure, method, multipart, payload

pytestmark = pytest.mark.usefixtures("transactional_db")  # the worker runs as in production

CHAT = 480112233
PNG = b"\x89PNG\r\n\x1a\n a screenshot"
PDF = b"%PDF-1.4 a ticket"


@pytest.fixture
def conversation(channel, post_update):
    assert post_update(channel, payload("text_message")).status_code == 200
    return Conversation.objects.get()


def test_a_reply_is_sent_with_send_message_and_its_id_stored(conversation, owner, telegram):
    message = outbound.reply(conversation, author=owner, text="Dat kan, stuur me je boekingscode.")
    assert message.status == DeliveryStatus.QUEUED
    run_tasks()

    (request,) = telegram.sends("sendMessage")
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"chat_id": CHAT, "text": "Dat kan, stuur me je boekingscode."}
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == f"{CHAT}:2001"
    assert message.error == ""
    assert message.sent_at is not None


def test_too_many_requests_waits_as_long_as_telegram_says_then_sends(conversation, owner, telegram):
    telegram.then(
        "POST",
        method("sendMessage"),
        failure(429, "Too Many Requests: retry after 30", retry_after=30),
    )
    message = outbound.reply(conversation, author=owner, text="Een moment.")
    run_tasks()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert "Too Many Requests" in message.error
    waiting = DBTaskResult.objects.get(status="READY", task_path__endswith="send_message")
    assert waiting.run_after >= timezone.now() + dt.timedelta(seconds=20)  # Telegram's 30 s

    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == f"{CHAT}:2001"
    assert len(telegram.sends()) == 2


@pytest.mark.parametrize(
    "trouble",
    [
        failure(500, "Internal Server Error"),
        failure(502, "Bad Gateway"),
        Answer(504, b"<html>Gateway Time-out</html>", content_type="text/html"),
    ],
)
def test_a_server_error_is_retried_then_sent(conversation, owner, telegram, trouble):
    telegram.then("POST", method("sendMessage"), trouble)
    message = outbound.reply(conversation, author=owner, text="Een moment.")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.error == ""
    assert len(telegram.sends()) == 2


def test_telegram_out_of_reach_is_retried(conversation, owner, telegram, settings):
    settings.LOKET_TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing listens there
    message = outbound.reply(conversation, author=owner, text="Een moment.")
    run_tasks()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert "could not reach Telegram" in message.error
    assert TOKEN not in message.error

    settings.LOKET_TELEGRAM_API_URL = telegram.url
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT


@pytest.mark.parametrize(
    ("status", "description", "reason"),
    [
        (403, "Forbidden: bot was blocked by the user", "has blocked the bot"),
        (403, "Forbidden: user is deactivated", "account has been deleted"),
        (400, "Bad Request: chat not found", "does not know this chat"),
        (401, "Unauthorized", "no longer accepts the bot token"),
        (400, "Bad Request: some new complaint", "Telegram refused the message"),
    ],
)
def test_a_refusal_fails_the_message_with_a_plain_reason(
    conversation, owner, telegram, status, description, reason
):
    telegram.then("POST", method("sendMessage"), failure(status, description))
    message = outbound.reply(conversation, author=owner, text="Hallo?")
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert reason in message.error
    assert TOKEN not in message.error
    assert len(telegram.sends()) == 1  # not retried


def test_a_photo_is_uploaded_with_the_text_as_its_caption(conversation, owner, telegram):
    message = outbound.reply(
        conversation,
        author=owner,
        text="Zo ziet je nieuwe ticket eruit.",
        attachments=[OutgoingFile("ticket.png", "image/png", PNG)],
    )
    run_tasks()

    assert not telegram.sends("sendMessage")
    (request,) = telegram.sends("sendPhoto")
    assert request.path == f"/bot{TOKEN}/sendPhoto"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert multipart(request) == {
        "chat_id": (None, "text/plain", str(CHAT).encode()),
        "caption": (None, "text/plain", b"Zo ziet je nieuwe ticket eruit."),
        "photo": ("ticket.png", "image/png", PNG),
    }
    message.refresh_from_db()
    assert (message.status, message.external_id) == (DeliveryStatus.SENT, f"{CHAT}:2001")


def test_other_files_go_as_documents_after_the_first(conversation, owner, telegram):
    message = outbound.reply(
        conversation,
        author=owner,
        text="Hierbij je ticket en de plattegrond.",
        attachments=[
            OutgoingFile("kaart.png", "image/png", PNG),
            OutgoingFile("ticket.pdf", "application/pdf", PDF),
        ],
    )
    run_tasks()
    (photo,) = telegram.sends("sendPhoto")
    (document,) = telegram.sends("sendDocument")
    assert multipart(photo)["caption"][2] == b"Hierbij je ticket en de plattegrond."
    assert multipart(document) == {
        "chat_id": (None, "text/plain", str(CHAT).encode()),
        "document": ("ticket.pdf", "application/pdf", PDF),
    }
    message.refresh_from_db()
    assert message.external_id == f"{CHAT}:2001"  # the first of the two
    assert message.status == DeliveryStatus.SENT


def test_a_text_too_long_for_a_caption_goes_first_on_its_own(conversation, owner, telegram):
    text = "Lees dit goed. " * 100  # 1500 characters: more than a caption's 1024
    outbound.reply(
        conversation,
        author=owner,
        text=text,
        attachments=[OutgoingFile("ticket.pdf", "application/pdf", PDF)],
    )
    run_tasks()
    (sent,) = telegram.sends("sendMessage")
    assert sent.json()["text"] == text.strip()
    (document,) = telegram.sends("sendDocument")
    assert "caption" not in multipart(document)


def test_a_text_over_4096_characters_is_sent_in_parts(conversation, owner, telegram):
    paragraphs = [f"Alinea {n}: " + "x" * 990 for n in range(6)]  # ~6000 characters
    message = outbound.reply(conversation, author=owner, text="\n\n".join(paragraphs))
    run_tasks()
    parts = [r.json()["text"] for r in telegram.sends()]
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert "\n\n".join(parts) == "\n\n".join(paragraphs)  # cut between paragraphs
    message.refresh_from_db()
    assert message.external_id == f"{CHAT}:2001"


def test_a_file_refused_after_the_text_arrived_is_a_warning_not_a_resend(
    conversation, owner, telegram
):
    telegram.then("POST", method("sendDocument"), failure(400, "Bad Request: file is too big"))
    message = outbound.reply(
        conversation,
        author=owner,
        text="Ticket en plattegrond.",
        attachments=[
            OutgoingFile("kaart.png", "image/png", PNG),
            OutgoingFile("ticket.pdf", "application/pdf", PDF),
        ],
    )
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert "ticket.pdf" in message.error and "larger than Telegram accepts" in message.error
    assert len(telegram.sends("sendPhoto")) == 1  # the part that arrived is not sent twice


@pytest.mark.parametrize("how", ["telegram id", "external id", "loket id"])
def test_an_agent_can_quote_the_customers_message(conversation, owner, telegram, how):
    theirs = Message.objects.get(external_id=f"{CHAT}:1365")
    reply_to = {
        "telegram id": f"{CHAT}:1365",
        "external id": {"external_id": f"{CHAT}:1365"},
        "loket id": {"id": theirs.pk},
    }[how]
    outbound.reply(conversation, author=owner, text="Dit bedoel je?", data={"reply_to": reply_to})
    run_tasks()
    assert telegram.sends()[0].json() == {
        "chat_id": CHAT,
        "text": "Dit bedoel je?",
        "reply_parameters": {"message_id": 1365, "allow_sending_without_reply": True},
    }


def test_a_group_is_answered_in_the_group_quoting_the_person(channel, post_update, owner, telegram):
    post_update(channel, payload("group_message"))
    conversation = Conversation.objects.get()
    message = outbound.reply(conversation, author=owner, text="Nee, hij vertrekt op tijd.")
    run_tasks()
    assert telegram.sends()[0].json() == {
        "chat_id": -1001876543210,
        "text": "Nee, hij vertrekt op tijd.",
        "reply_parameters": {"message_id": 52, "allow_sending_without_reply": True},
    }
    message.refresh_from_db()
    assert message.external_id == "-1001876543210:2001"


def test_a_reaction_to_an_answer_in_a_group_finds_it(channel, post_update, owner, telegram):
    post_update(channel, payload("group_message"))
    outbound.reply(Conversation.objects.get(), author=owner, text="Op tijd.")
    run_tasks()
    reaction = payload("message_reaction")["message_reaction"]
    reaction["chat"] = {"id": -1001876543210, "title": "Paros trip 2024", "type": "supergroup"}
    reaction["message_id"] = 2001
    assert post_update(channel, {"update_id": 1, "message_reaction": reaction}).status_code == 200
    ours = Message.objects.get(external_id="-1001876543210:2001")
    assert ours.data["reactions"] == {"-1001876543210:480112233": "\U0001f44d"}


def test_an_image_sendphoto_cannot_take_goes_as_a_document(conversation, owner, telegram):
    telegram.then(
        "POST", method("sendPhoto"), failure(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    )
    message = outbound.reply(
        conversation,
        author=owner,
        text="Het panorama van de haven.",
        attachments=[OutgoingFile("panorama.png", "image/png", PNG)],
    )
    run_tasks()
    (document,) = telegram.sends("sendDocument")
    assert multipart(document) == {
        "chat_id": (None, "text/plain", str(CHAT).encode()),
        "caption": (None, "text/plain", b"Het panorama van de haven."),
        "document": ("panorama.png", "image/png", PNG),
    }
    message.refresh_from_db()
    assert (message.status, message.external_id) == (DeliveryStatus.SENT, f"{CHAT}:2001")
