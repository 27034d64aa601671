"""Automatic mail never gets an automatic answer, whatever would give it: the workspace's
greeting, a "message received → send a canned reply" rule, a rule that starts a bot, or a flow bot
for new conversations. The corpus's out-of-office, bulk, X-Auto-Response-Suppress, no-reply and
read-receipt mails go through the real ingest path (``journal.record``, as the IMAP poller and
``loket smtpd`` hand them over) into a channel whose SMTP server is a real receiver in the test:
nothing reaches it, while a person's mail gets every answer over SMTP."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from loket.automation import autoreplies
from loket.automation.canned import create_canned_reply
from loket.automation.models import AutoReplyKind, RuleRun
from loket.automation.rules import service as rule_service
from loket.bots import services as bot_services
from loket.bots.models import BotSession
from loket.inbox.models import Direction, Message, MessageKind
from loket.inbox.services import journal
from tests.connectors.email import smtp_servers
from tests.connectors.providers import run_tasks

CORPUS = Path(__file__).parent / "corpus"
AUTOMATIC = (
    "34-out-of-office.eml",
    "35-newsletter-bulk.eml",
    "36-auto-response-suppress.eml",
    "49-noreply-notification.eml",
    "52-read-receipt.eml",
)
PERSON = "01-plain-utf8-qp-nl.eml"

FLOW = {
    "start": "welcome",
    "language": "en",
    "steps": {
        "welcome": {"type": "message", "text": "Hi, I am the shop's bot.", "next": "bye"},
        "bye": {"type": "close", "text": "A colleague reads along."},
    },
}


@pytest.fixture
def smtp_server(settings, tmp_path):
    with smtp_servers.trusted_server(settings, tmp_path) as server:
        yield server


@pytest.fixture
def channel(transactional_db, workspace, smtp_server):
    return smtp_servers.forwarding_channel(workspace, smtp_server)


@pytest.fixture
def everything_answers(workspace, owner):
    """A greeting, a rule that labels and replies, and a bot for new conversations."""
    autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Thanks for writing!")
    canned = create_canned_reply(
        owner, shortcut="ack", title="Ack", shared=True, body="We received your mail."
    )
    rule_service.create_rule(
        workspace,
        name="Acknowledge",
        trigger="message_received",
        actions=[
            {"type": "add_labels", "labels": ["mail"]},
            {"type": "send_canned_reply", "canned_reply_id": canned.pk},
        ],
    )
    flow = bot_services.create_flow(workspace, name="Mail bot", draft=FLOW)
    bot_services.publish(flow)
    bot_services.update_flow(flow, enabled=True)


def receive(channel, name: str) -> Message:
    outcome = journal.record(
        channel, (CORPUS / name).read_bytes(), {"source": "imap"}, content_type="message/rfc822"
    )
    run_tasks(retries_due=True)
    return Message.objects.get(pk=outcome.results[0].message_id)


def answers(conversation) -> list[str]:
    return list(
        Message.objects.filter(
            conversation=conversation, direction=Direction.OUTBOUND, kind=MessageKind.MESSAGE
        )
        .order_by("pk")
        .values_list("text", flat=True)
    )


@pytest.mark.parametrize("name", AUTOMATIC)
def test_automatic_mail_gets_no_rule_reply_no_bot_and_no_greeting(
    channel, smtp_server, everything_answers, name
):
    message = receive(channel, name)
    assert message.data["auto_submitted"] is True
    conversation = message.conversation
    assert answers(conversation) == []
    assert smtp_server.received == []  # nothing left over SMTP
    assert not BotSession.objects.filter(conversation=conversation).exists()
    # The rule still labelled it, and says why it did not reply.
    assert list(conversation.labels.values_list("name", flat=True)) == ["mail"]
    [run] = RuleRun.objects.filter(conversation=conversation)
    assert run.outcome == "done"
    assert run.done[1]["type"] == "send_canned_reply" and run.done[1]["skipped"] is True
    reason = message.data["email"]["auto_reason"]
    assert run.done[1]["said"]["values"] == {"reason": reason}


def test_a_persons_mail_gets_the_greeting_the_rules_reply_and_the_bot(
    channel, smtp_server, everything_answers
):
    message = receive(channel, PERSON)
    assert not message.data.get("auto_submitted")
    conversation = message.conversation
    said = answers(conversation)
    assert "Thanks for writing!" in said
    assert "We received your mail." in said
    assert "Hi, I am the shop's bot." in said
    assert RuleRun.objects.get(conversation=conversation).outcome == "done"
    # Every answer left over SMTP to the customer, marked as automatic so their
    # out-of-office does not answer it either.
    sent = [r.message for r in smtp_server.received]
    assert len(sent) == len(said)
    assert all(m["Auto-Submitted"] == "auto-replied" for m in sent)


def test_an_out_of_office_answering_our_reply_threads_in_and_gets_nothing_back(
    channel, smtp_server, everything_answers
):
    """The person writes and is answered; their out-of-office answers our answer. It threads
    into the conversation and nothing goes back: no ping-pong."""
    first = receive(channel, PERSON)
    sent_before = len(smtp_server.received)
    ours = smtp_server.received[-1].message
    ooo = EmailMessage()
    ooo["From"] = "Anouk de Vries <anouk.devries@example.nl>"
    ooo["To"] = ours["Reply-To"] or ours["From"]
    ooo["Subject"] = "Automatic reply: " + ours["Subject"]
    ooo["Message-ID"] = make_msgid(domain="example.nl")
    ooo["In-Reply-To"] = ours["Message-ID"]
    ooo["References"] = ours["Message-ID"]
    ooo["Auto-Submitted"] = "auto-replied"
    ooo.set_content("I am out of the office until Monday.")
    journal.record(channel, bytes(ooo), {"source": "imap"}, content_type="message/rfc822")
    run_tasks(retries_due=True)
    stored = Message.objects.filter(channel=channel, direction=Direction.INBOUND).latest("pk")
    assert stored.data["auto_submitted"] is True
    assert stored.conversation_id == first.conversation_id
    assert len(smtp_server.received) == sent_before
    assert RuleRun.objects.filter(conversation=first.conversation).count() == 2
