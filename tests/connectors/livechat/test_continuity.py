"""Outside business hours the widget asks for an email address; a reply to a visitor who has
left is emailed (to a real SMTP receiver) and their email answer threads back into the chat."""

from __future__ import annotations

import pytest
from django.db import transaction

from loket.connectors.livechat import continuity, widget
from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, Message
from loket.inbox.services import journal, outbound
from loket.inbox.services.channels import create_channel
from loket.jobs.worker import Worker
from tests import factories
from tests.connectors.email import smtp_servers


@pytest.fixture
def smtp_server():
    with smtp_servers.RecordingServer(tls="none") as server:
        yield server


def setup_channels(workspace, smtp_server):
    mailbox = factories.email_channel(
        workspace, smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none"
    )
    chat, _ = create_channel(
        workspace,
        get_connector("livechat"),
        name="Website",
        config={"continuity_email_channel": str(mailbox.uuid)},
    )
    return chat, mailbox


def run_tasks() -> None:
    worker = Worker(stop=None)
    while worker._run_once():
        pass


def test_outside_hours_the_widget_asks_for_an_email_address(db, workspace, smtp_server):
    chat, _ = setup_channels(workspace, smtp_server)
    assert widget.config(chat, "en")["prechat"]["enabled"] is False  # always open: no form
    workspace.business_hours = {"mon": [["00:00", "00:01"]]}
    workspace.save()
    chat.refresh_from_db()
    form = widget.config(chat, "en")["prechat"]
    assert form["enabled"] is True
    assert [(f["name"], f["required"]) for f in form["fields"]] == [
        ("name", False),
        ("email", True),
    ]
    _, visitor = widget.start_session(chat)
    with pytest.raises(widget.WidgetError, match="Email"):
        widget.save_prechat(chat, visitor, {"name": "Emily"})


def test_outside_hours_a_visitor_leaves_an_email_the_reply_is_emailed_and_the_answer_threads_back(
    transactional_db, smtp_server
):
    workspace = factories.workspace("cont")
    chat, mailbox = setup_channels(workspace, smtp_server)
    owner = factories.owner_of(workspace)
    # Outside business hours: the form asks for an email address, and the visitor leaves one.
    workspace.business_hours = {"mon": [["00:00", "00:01"]]}
    workspace.save()
    chat.refresh_from_db()
    _, visitor = widget.start_session(chat)
    with pytest.raises(widget.WidgetError, match="Email"):
        widget.save_prechat(chat, visitor, {"name": "Emily"})
    _, visitor = widget.save_prechat(
        chat, visitor, {"name": "Emily", "email": "emily@visitor.example"}
    )
    shown = widget.post_message(
        chat, visitor, client_id="c-1", text="Please mail me the invoice", page=None, ip="1"
    )
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)

    # The visitor's widget is open: the reply goes to it only.
    continuity.seen(chat.pk, visitor.key)
    with transaction.atomic():
        first = outbound.reply(conversation, author=owner, text="One moment please.")
    run_tasks()
    assert smtp_server.received == []

    # Gone (no widget for 90 s): the next reply is also emailed.
    from django.core.cache import cache

    cache.clear()
    with transaction.atomic():
        reply = outbound.reply(conversation, author=owner, text="Here it is: invoice 77.")
    run_tasks()
    [sent] = smtp_server.received
    mail = sent.message
    assert sent.rcpt_tos == ("emily@visitor.example",)
    assert f"[#{conversation.number}]" in mail["Subject"]
    assert "Here it is: invoice 77." in mail.get_body(("plain",)).get_content()
    reply.refresh_from_db()
    assert reply.data["continuity_email"] == mail["Message-ID"].strip("<>")
    assert first.pk != reply.pk

    answer = (
        "From: Emily <emily@visitor.example>\r\n"
        "To: support@shop.example\r\n"
        f"Subject: Re: {mail['Subject']}\r\n"
        "Message-ID: <answer-1@visitor.example>\r\n"
        f"In-Reply-To: {mail['Message-ID']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thanks, got it!\r\n\r\nOn Wed, Shop wrote:\r\n> Here it is: invoice 77.\r\n"
    ).encode()
    journal.record(mailbox, answer, {"source": "imap"}, content_type="message/rfc822")
    threaded = Message.objects.get(external_id="answer-1@visitor.example")
    assert threaded.conversation_id == conversation.pk
    assert threaded.text.strip() == "Thanks, got it!"
