"""CSAT end to end on email: a customer's mail comes in through the real ingest path, an agent
resolves the conversation, the survey leaves over SMTP to a real receiver in the test (aiosmtpd)
with one link per score; the customer opens a link, rates with a comment, changes it within
the window and is refused after it; agents see the rating as an activity line."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.test import Client
from django.utils import timezone

from loket.inbox.models import ConversationStatus, Message, SatisfactionRating
from loket.inbox.services import journal
from loket.inbox.services.conversations import update_conversation
from loket.reports import csat
from loket.web.inbox.timeline import entry
from tests.connectors.email import smtp_servers
from tests.connectors.providers import run_tasks


@pytest.fixture
def smtp_server(settings, tmp_path):
    with smtp_servers.trusted_server(settings, tmp_path) as server:
        yield server


@pytest.fixture
def channel(transactional_db, workspace, smtp_server):
    channel = smtp_servers.forwarding_channel(workspace, smtp_server)
    csat.set_setting(channel, {"enabled": True, "delay_minutes": 0})
    return channel


def customer_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Emily Carter <emily@customer.example>"
    mail["To"] = "Shop Support <support@shop.example>"
    mail["Subject"] = "Where is my order?"
    mail["Message-ID"] = make_msgid(domain="customer.example")
    mail.set_content("Hello, my order 1234 has not arrived yet. Can you check it please?")
    return bytes(mail)


def test_email_survey_link_rating_change_and_refusal(channel, smtp_server, owner, settings):
    outcome = journal.record(
        channel, customer_mail(), {"source": "imap"}, content_type="message/rfc822"
    )
    run_tasks(retries_due=True)
    conversation = Message.objects.get(pk=outcome.results[0].message_id).conversation

    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    run_tasks(retries_due=True)
    run_tasks(retries_due=True)  # again: still one survey

    [sent] = smtp_server.received
    assert sent.rcpt_tos == ("emily@customer.example",)
    body = sent.message.get_body(preferencelist=("plain",)).get_content()
    links = re.findall(r"(https?://\S+/csat/[^/\s]+/\?rating=(\d))", body)
    assert [score for _link, score in links] == ["1", "2", "3", "4", "5"]
    assert "5 \u2013 Great" in body
    survey = Message.objects.get(conversation=conversation, data__has_key="csat_survey")
    assert survey.status == "sent"

    client = Client()
    path = re.sub(r"^https?://[^/]+", "", links[3][0])  # the "4" link
    page = client.get(path)
    assert page.status_code == 200
    assert 'value="4" required checked' in page.content.decode()

    form_path = path.split("?")[0]
    saved = client.post(form_path, {"rating": "4", "comment": "Friendly, but slow"})
    assert saved.status_code == 200
    rating = SatisfactionRating.objects.get(conversation=conversation)
    assert (rating.rating, rating.comment, rating.source) == (4, "Friendly, but slow", "email")
    line = Message.objects.get(conversation=conversation, data__action="csat_rated")
    assert entry(line).sentence == "The customer rated this conversation 4/5"

    assert client.post(form_path, {"rating": "5", "comment": "Fine after all"}).status_code == 200
    rating.refresh_from_db()
    assert (rating.rating, rating.comment) == (5, "Fine after all")

    SatisfactionRating.objects.filter(pk=rating.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.LOKET_CSAT_CHANGE_HOURS, minutes=1)
    )
    refused = client.post(form_path, {"rating": "1"})
    assert refused.status_code == 400
    assert "can no longer be changed" in refused.content.decode()
    rating.refresh_from_db()
    assert rating.rating == 5
    assert Message.objects.filter(conversation=conversation, data__action="csat_rated").count() == 2
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    assert len(smtp_server.received) == 1  # rating sent nothing more
