"""How the agent app shows an email: sanitised HTML in a sandboxed frame with inline cid: images,
remote images blocked until asked (once, or always for the sender), the quoted history behind
"Show quoted text", why a mail was threaded, a DMARC warning, and Cc/Bcc in the composer."""

from __future__ import annotations

import base64

import pytest

from loket.inbox.models import Attachment, Contact, Conversation, Message
from loket.inbox.services import journal
from tests import factories

pytestmark = pytest.mark.django_db

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner.user)
    return client


@pytest.fixture
def channel(workspace):
    return factories.email_channel(workspace, trusted_authserv_ids=["mx.shop.example"])


def mail(message_id: str, *, extra_headers: str = "", html: str = "", text: str = "") -> bytes:
    boundary = "outer"
    body = (
        "Thanks, but the parcel is still missing.\r\n\r\n"
        "On Tue, 1 Dec 2026 at 10:00, Shop Support <support@shop.example> wrote:\r\n"
        "> It ships today.\r\n"
    )
    html = html or (
        '<div dir="ltr">Thanks, but the parcel is still missing. <img src="cid:photo1@x">'
        '<img src="https://tracker.example/open.gif"><script>alert(1)</script></div>'
        '<div class="gmail_quote"><div class="gmail_attr">On Tue, 1 Dec 2026 at 10:00, Shop '
        'Support wrote:</div><blockquote class="gmail_quote">It ships today.</blockquote></div>'
    )
    return (
        "From: Emily <emily@customer.example>\r\n"
        "To: support@shop.example\r\n"
        "Cc: Carol <carol@customer.example>\r\n"
        "Subject: Where is my parcel\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "Date: Wed, 02 Dec 2026 09:00:00 +0000\r\n"
        f"{extra_headers}"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/related; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text or body}\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
        "--alt--\r\n"
        f"--{boundary}\r\n"
        "Content-Type: image/png; name=photo.png\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-ID: <photo1@x>\r\n"
        "Content-Disposition: inline; filename=photo.png\r\n\r\n"
        f"{base64.b64encode(PIXEL).decode()}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def ingest(channel, raw: bytes) -> Message:
    outcome = journal.record(channel, raw, {"source": "imap"}, content_type="message/rfc822")
    return Message.objects.get(pk=outcome.results[0].message_id)


def pane(client, message: Message) -> str:
    number = Conversation.objects.get(pk=message.conversation_id).number
    return client.get(f"/w/acme/inbox/{number}/pane/").content.decode()


def test_the_body_shows_inline_images_and_blocks_remote_ones_until_asked(agent_client, channel):
    message = ingest(channel, mail("m1@customer.example"))
    assert "<script" not in message.html
    photo = Attachment.objects.get(message=message)
    assert photo.inline and photo.content_id == "photo1@x"

    body = agent_client.get(f"/w/acme/messages/{message.pk}/body/")
    html = body.content.decode()
    assert f'src="/w/acme/attachments/{photo.pk}/"' in html  # cid: → the stored part
    assert "https://tracker.example/open.gif" in html
    csp = body["Content-Security-Policy"]
    assert "img-src 'self' data:;" in csp and "https:" not in csp  # the tracker does not load
    assert body["Referrer-Policy"] == "no-referrer"
    loaded = agent_client.get(f"/w/acme/messages/{message.pk}/body/?images=1")
    assert "img-src 'self' https: http: data:" in loaded["Content-Security-Policy"]

    page = pane(agent_client, message)
    assert "Remote images are blocked." in page and "data-load-images" in page
    assert "photo.png" not in page  # an inline part is not listed as a download
    assert "Cc: carol@customer.example" in page


def test_always_loading_a_senders_images_is_a_per_contact_choice(agent_client, channel):
    message = ingest(channel, mail("m1@customer.example"))
    contact = message.author_contact
    response = agent_client.post(
        f"/w/acme/contacts/{contact.pk}/remote-images/", {"allowed": "1", "next": "/w/acme/"}
    )
    assert response.status_code == 302 and response["Location"] == "/w/acme/"
    assert Contact.objects.get(pk=contact.pk).load_remote_images is True
    page = pane(agent_client, message)
    assert f"/w/acme/messages/{message.pk}/body/?images=1" in page
    assert "Block them again" in page
    evil = agent_client.post(
        f"/w/acme/contacts/{contact.pk}/remote-images/",
        {"allowed": "0", "next": "https://evil.example/"},
    )
    assert evil.status_code == 302 and "evil.example" not in evil["Location"]
    assert Contact.objects.get(pk=contact.pk).load_remote_images is False


def test_quoted_history_is_behind_show_quoted_text(agent_client, channel):
    message = ingest(channel, mail("m1@customer.example"))
    assert "It ships today" not in message.text and "It ships today" not in message.html
    page = pane(agent_client, message)
    assert "Show quoted text" in page
    quoted = agent_client.get(f"/w/acme/messages/{message.pk}/body/?part=quoted")
    assert quoted.status_code == 200 and "It ships today." in quoted.content.decode()
    assert quoted["Content-Security-Policy"].startswith("sandbox")


def test_why_a_mail_was_threaded_and_a_failed_dmarc_are_shown(agent_client, channel):
    first = ingest(channel, mail("m1@customer.example"))
    answer = ingest(
        channel,
        mail(
            "m2@customer.example",
            extra_headers=(
                "In-Reply-To: <m1@customer.example>\r\n"
                "Authentication-Results: mx.shop.example; spf=fail smtp.mailfrom=x;"
                " dkim=none; dmarc=fail header.from=customer.example\r\n"
            ),
        ),
    )
    assert answer.conversation_id == first.conversation_id
    page = pane(agent_client, answer)
    assert "it answers an earlier message of this conversation" in page
    assert "This sender failed DMARC" in page
    # The same header from a host the channel does not trust is not believed.
    forged = ingest(
        channel,
        mail(
            "m3@customer.example",
            extra_headers="Authentication-Results: mx.evil.example; dmarc=fail\r\n",
        ),
    )
    assert "authentication" not in forged.data["email"]


def test_the_composer_sends_cc_and_bcc_on_email_channels_only(agent_client, channel, api_channel):
    message = ingest(channel, mail("m1@customer.example"))
    number = Conversation.objects.get(pk=message.conversation_id).number
    page = pane(agent_client, message)
    assert 'name="cc"' in page and 'name="bcc"' in page
    bad = agent_client.post(f"/w/acme/inbox/{number}/send/", {"text": "Hi", "cc": "not an address"})
    assert bad.status_code == 400 and "is not an email address" in bad.content.decode()
    sent = agent_client.post(
        f"/w/acme/inbox/{number}/send/",
        {
            "text": "Copying the warehouse",
            "cc": "warehouse@shop.example",
            "bcc": "a@b.example",
            "seen": message.pk,
        },
    )
    assert sent.status_code == 200
    reply = Message.objects.get(text="Copying the warehouse")
    assert reply.data["email"]["cc"] == [{"name": "", "address": "warehouse@shop.example"}]
    assert reply.data["email"]["bcc"] == [{"name": "", "address": "a@b.example"}]

    chat = factories.inbound(api_channel, "Hi", contact_id="chat-1")
    chat_number = Conversation.objects.get(pk=chat.conversation_id).number
    chat_pane = agent_client.get(f"/w/acme/inbox/{chat_number}/pane/").content.decode()
    assert 'name="cc"' not in chat_pane
