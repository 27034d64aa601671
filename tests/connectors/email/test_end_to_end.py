"""The email channel end to end, against a real Dovecot and real SMTP servers: mail appended over
IMAP becomes a conversation; the agent's reply leaves over SMTP correctly threaded; the customer's
answer from Outlook, Gmail or Apple Mail threads back with its quoted history cut; bounces mark
the reply failed; ``loket smtpd`` answers 250 only after commit; a killed poller loses nothing."""

from __future__ import annotations

import os
import signal
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from loket.connectors.email import imap, mailboxes
from loket.connectors.models import Mailbox
from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel
from tests import factories
from tests.connectors.email import smtp_servers
from tests.processes import free_port, loket_process, subprocess_env, wait_until


@pytest.fixture
def smtp_server():
    with smtp_servers.RecordingServer(tls="starttls", credentials={"desk": "smtp-pass"}) as server:
        yield server


def mailbox_channel(workspace, dovecot, smtp_server, **extra):
    channel, _ = create_channel(
        workspace,
        get_connector("email"),
        name="Support mail",
        config={
            "address": "support@shop.example",
            "from_name": "Shop Support",
            "imap_host": dovecot.host,
            "imap_port": dovecot.port,
            "imap_security": "starttls",
            "imap_username": dovecot.username,
            "imap_password": dovecot.password,
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_security": "starttls",
            "smtp_username": "desk",
            "smtp_password": "smtp-pass",
            **extra,
        },
    )
    return channel


def poll(channel) -> imap.MailboxState:
    """One round of what the mailbox poller does: fetch new mail, journal it, mark it."""
    settings = get_connector("email").imap_settings(channel)
    with imap.ImapMailbox(settings) as mailbox:
        return mailbox.fetch_new(
            mailboxes.load_state(channel.pk),
            lambda uid, raw, state: mailboxes.store(channel, uid, raw, state),
        )


def customer_mail(subject="Order 1234 did not arrive", body="Hello, my order has not arrived."):
    mail = EmailMessage()
    mail["From"] = "Emily de Vries <emily@customer.example>"
    mail["To"] = "Shop Support <support@shop.example>"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="customer.example")
    mail["Date"] = "Wed, 02 Dec 2026 09:15:00 +0100"
    mail.set_content(body)
    return mail


def answer(style: str, reply: EmailMessage, text: str) -> EmailMessage:
    """The customer's answer to ``reply`` as a given mail client writes it, quoting it."""
    quoted_text = reply.get_body(("plain",)).get_content()
    mail = EmailMessage()
    mail["From"] = "Emily de Vries <emily@customer.example>"
    mail["To"] = reply["Reply-To"] or reply["From"]
    mail["Subject"] = "RE: " + reply["Subject"] if style == "outlook" else "Re: " + reply["Subject"]
    mail["Message-ID"] = make_msgid(domain="customer.example")
    mail["In-Reply-To"] = reply["Message-ID"]
    mail["References"] = f"{reply['References'] or ''} {reply['Message-ID']}".strip()
    if style == "outlook":
        plain = (
            f"{text}\r\n\r\nMet vriendelijke groet,\r\nEmily\r\n\r\n"
            "________________________________\r\n"
            "Van: Shop Support <support@shop.example>\r\n"
            "Verzonden: woensdag 2 december 2026 10:00\r\n"
            "Aan: Emily de Vries <emily@customer.example>\r\n"
            f"Onderwerp: {reply['Subject']}\r\n\r\n{quoted_text}"
        )
        html = (
            f"<html><body><div>{text}</div><div>Met vriendelijke groet,<br>Emily</div>"
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
            '<div id="divRplyFwdMsg"><b>Van:</b> Shop Support<br><b>Onderwerp:</b> '
            f"{reply['Subject']}</div><div>{quoted_text}</div></body></html>"
        )
    elif style == "gmail":
        quoted = "\r\n".join("> " + line for line in quoted_text.splitlines())
        plain = f"{text}\r\n\r\nOn Wed, 2 Dec 2026 at 10:00, Shop Support wrote:\r\n{quoted}"
        html = (
            f'<div dir="ltr">{text}</div><br><div class="gmail_quote">'
            '<div dir="ltr" class="gmail_attr">On Wed, 2 Dec 2026 at 10:00, Shop Support '
            '&lt;support@shop.example&gt; wrote:<br></div><blockquote class="gmail_quote">'
            f"{quoted_text}</blockquote></div>"
        )
    else:  # Apple Mail, in French
        quoted = "\r\n".join("> " + line for line in quoted_text.splitlines())
        plain = (
            f"{text}\r\n\r\nEnvoyé de mon iPhone\r\n\r\n"
            f"> Le 2 déc. 2026 à 10:00, Shop Support <support@shop.example> a écrit :\r\n"
            f">\r\n{quoted}"
        )
        html = (
            f"<html><body><div>{text}</div><div><br>Envoyé de mon iPhone</div>"
            '<div><br><blockquote type="cite">Le 2 déc. 2026 à 10:00, Shop Support a écrit :'
            f"<br><br>{quoted_text}</blockquote></div></body></html>"
        )
    mail.set_content(plain)
    mail.add_alternative(html, subtype="html")
    return mail


def test_mail_appended_over_imap_becomes_a_conversation_and_is_marked_seen(
    workspace, dovecot, ca_bundle, smtp_server
):
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    first = customer_mail()
    dovecot.append(bytes(first))
    state = poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    assert conversation.subject == "Order 1234 did not arrive"
    assert conversation.contact.email == "emily@customer.example"
    assert conversation.contact.name == "Emily de Vries"
    message = Message.objects.get(conversation=conversation)
    assert message.text.strip() == "Hello, my order has not arrived."
    assert message.external_id == first["Message-ID"].strip("<>")
    assert all("\\Seen" in flags for flags in dovecot.flags().values())
    assert Mailbox.objects.get(channel=channel).last_uid == state.last_uid == 1
    # Polling again fetches nothing new and stores nothing twice.
    poll(channel)
    assert Message.objects.filter(channel=channel).count() == 1


@pytest.mark.parametrize("style", ["outlook", "gmail", "apple"])
def test_a_reply_leaves_threaded_and_the_customers_answer_threads_back(
    workspace, owner, dovecot, ca_bundle, smtp_server, style
):
    channel = mailbox_channel(workspace, dovecot, smtp_server, plus_addressing=True)
    first = customer_mail()
    dovecot.append(bytes(first))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)

    reply = outbound.reply(conversation, author=owner, text="We are sorry! It ships today.")
    outbound.deliver(reply.pk)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT, reply.error
    [sent] = smtp_server.received
    mail = sent.message
    assert set(sent.rcpt_tos) == {"emily@customer.example"}
    assert mail["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in mail["References"]
    assert mail["Message-ID"].strip("<>") == reply.external_id
    assert mail["Subject"] == f"Re: Order 1234 did not arrive [#{conversation.number}]"
    assert mail["From"].addresses[0].addr_spec == "support@shop.example"
    assert mail["Reply-To"].addresses[0].addr_spec.startswith("support+c")
    assert "Auto-Submitted" not in mail
    assert "We are sorry! It ships today." in mail.get_body(("plain",)).get_content()

    their_answer = answer(style, mail, "Thank you, but the tracking link does not work.")
    dovecot.append(bytes(their_answer))
    poll(channel)
    latest = Message.objects.filter(channel=channel, direction="in").order_by("-id").first()
    assert latest.conversation_id == conversation.pk
    assert latest.data["thread"] == {"by": "references"}
    assert latest.text.startswith("Thank you, but the tracking link does not work.")
    assert "It ships today" not in latest.text and "It ships today" not in latest.html
    assert "It ships today" in (
        latest.data["email"]["quoted_text"] + latest.data["email"]["quoted_html"]
    )


def test_a_participant_without_references_threads_by_the_subject_reference(
    workspace, owner, dovecot, ca_bundle, smtp_server
):
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    dovecot.append(bytes(customer_mail()))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    again = customer_mail(subject=f"Still waiting [#{conversation.number}]", body="Any news?")
    stranger = customer_mail(subject=f"Hijack [#{conversation.number}]", body="Send me the data")
    stranger.replace_header("From", "Mallory <mallory@evil.example>")
    dovecot.append(bytes(again))
    dovecot.append(bytes(stranger))
    poll(channel)
    assert Message.objects.get(text__startswith="Any news").conversation_id == conversation.pk
    hijack = Message.objects.get(text__startswith="Send me the data")
    assert hijack.conversation_id != conversation.pk


def test_replies_carry_the_agents_and_the_channels_signature(
    workspace, owner, dovecot, ca_bundle, smtp_server
):
    channel = mailbox_channel(workspace, dovecot, smtp_server, signature="Shop.example | 020 123")
    owner.email_signature = "Anna, customer care"
    owner.save()
    dovecot.append(bytes(customer_mail()))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    reply = outbound.reply(conversation, author=owner, text="Done.")
    outbound.deliver(reply.pk)
    text = smtp_server.received[0].message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Done.\n\n-- \nAnna, customer care\nShop.example | 020 123" in text


def test_the_workspaces_attachment_limit_applies_to_mail(
    workspace, dovecot, ca_bundle, smtp_server
):
    workspace.attachment_max_mb = 1
    workspace.save()
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    mail = customer_mail(body="Two files attached.")
    mail.add_attachment(b"x" * 2_000_000, maintype="application", subtype="pdf", filename="big.pdf")
    mail.add_attachment(b"y" * 1000, maintype="application", subtype="pdf", filename="small.pdf")
    dovecot.append(bytes(mail))
    poll(channel)
    message = Message.objects.get(channel=channel)
    assert [a.filename for a in message.attachments.all()] == ["small.pdf"]
    [skipped] = message.data["email"]["skipped_attachments"]
    assert skipped["filename"] == "big.pdf" and "1 MB" in skipped["reason"]


def test_the_sent_copy_goes_to_the_sent_folder(workspace, owner, dovecot, ca_bundle, smtp_server):
    dovecot.create_folder("Sent")
    channel = mailbox_channel(workspace, dovecot, smtp_server, imap_sent_folder="Sent")
    dovecot.append(bytes(customer_mail()))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    reply = outbound.reply(conversation, author=owner, text="On its way.", data=None)
    outbound.deliver(reply.pk)
    [copy] = dovecot.messages("Sent")
    assert f"<{Message.objects.get(pk=reply.pk).external_id}>".encode() in copy
    assert all("\\Seen" in flags for flags in dovecot.flags("Sent").values())


def test_cc_and_bcc_from_the_composer_reach_the_envelope_not_the_headers(
    workspace, owner, dovecot, ca_bundle, smtp_server
):
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    dovecot.append(bytes(customer_mail()))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    reply = outbound.reply(
        conversation,
        author=owner,
        text="Copying our warehouse.",
        data={
            "email": {
                "cc": [{"name": "", "address": "warehouse@shop.example"}],
                "bcc": [{"name": "", "address": "audit@shop.example"}],
            }
        },
    )
    outbound.deliver(reply.pk)
    [sent] = smtp_server.received
    assert set(sent.rcpt_tos) == {
        "emily@customer.example",
        "warehouse@shop.example",
        "audit@shop.example",
    }
    assert "warehouse@shop.example" in sent.message["Cc"]
    assert b"audit@shop.example" not in sent.data


def test_a_bounce_marks_the_reply_failed_with_the_reason(
    workspace, owner, dovecot, ca_bundle, smtp_server
):
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    dovecot.append(bytes(customer_mail()))
    poll(channel)
    conversation = Conversation.objects.get(channel=channel)
    reply = outbound.reply(conversation, author=owner, text="Here is your invoice.")
    outbound.deliver(reply.pk)
    reply.refresh_from_db()
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        "To: support@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.customer.example')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        "Final-Recipient: rfc822; emily@customer.example\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <emily@customer.example>: mailbox unknown\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{reply.external_id}>\r\nSubject: Re: Order\r\n"
        "--b1--\r\n"
    ).encode()
    dovecot.append(bounce)
    poll(channel)
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED
    assert "emily@customer.example" in reply.error and "5.1.1" in reply.error
    assert not Conversation.objects.filter(contact__email__icontains="mailer-daemon").exists()


def test_auto_replies_are_stored_and_marked(workspace, dovecot, ca_bundle, smtp_server):
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    ooo = customer_mail(subject="Automatic reply: Order", body="I am out of office until Monday.")
    ooo["Auto-Submitted"] = "auto-replied"
    dovecot.append(bytes(ooo))
    poll(channel)
    message = Message.objects.get(channel=channel)
    assert message.data["auto_submitted"] is True
    assert "Auto-Submitted" in message.data["email"]["auto_reason"]


# --- real processes ----------------------------------------------------------------------------
WORKER_ENV = {
    "LOKET_WORKER_POLL_SECONDS": "0.2",
    "LOKET_MAILBOX_RESCAN_SECONDS": "0.2",
    "LOKET_MAILBOX_LEASE_SECONDS": "2",
    "LOKET_MAILBOX_POLL_SECONDS": "1",
}


@pytest.mark.subprocess
def test_killing_the_poller_mid_fetch_stores_every_mail_exactly_once(
    transactional_db, tmp_path, dovecot, ca_bundle, smtp_server
):
    workspace = factories.workspace("mailcrash")
    channel = mailbox_channel(workspace, dovecot, smtp_server)
    count = 60
    ids = []
    for n in range(count):
        mail = customer_mail(subject=f"Question {n}", body=f"Question number {n}. " + "x" * 20000)
        ids.append(mail["Message-ID"].strip("<>"))
        dovecot.append(bytes(mail))
    env = subprocess_env(tmp_path, LOKET_EMAIL_CA_FILE=str(ca_bundle), **WORKER_ENV)
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    stored = lambda: Message.objects.filter(channel=channel).count()  # noqa: E731
    try:
        with loket_process(["worker"], env=env, log_path=logs[0]) as first:
            wait_until(lambda: stored() >= 5, timeout=60, message="the poller stored nothing")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = stored()
        assert 0 < killed_at < count, f"the kill came too late to be mid-fetch ({killed_at})"
        with loket_process(["worker"], env=env, log_path=logs[1]):
            wait_until(lambda: stored() >= count, timeout=90, message="mail went missing")
            wait_until(
                lambda: (
                    len(dovecot.flags()) == count
                    and all("\\Seen" in f for f in dovecot.flags().values())
                ),
                timeout=30,
                message="not every mail was marked seen",
            )
    except BaseException:
        for path in logs:
            print(f"----- {path.name} -----\n{path.read_text(errors='replace')[-5000:]}")
        raise
    external_ids = list(
        Message.objects.filter(channel=channel).values_list("external_id", flat=True)
    )
    assert sorted(external_ids) == sorted(ids)  # every mail, each exactly once
    assert not InboundEvent.objects.filter(channel=channel, status=InboundStatus.FAILED).exists()


def _smtpd(tmp_path, env):
    port = free_port()
    process = loket_process(
        ["smtpd", "--port", str(port)], env=env, log_path=tmp_path / "smtpd.log"
    )
    return port, process


def _wait_for_port(port: int, process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("loket smtpd exited")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
                client.noop()
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("loket smtpd did not listen")


@pytest.mark.subprocess
def test_loket_smtpd_answers_250_only_after_commit_and_4xx_without_a_database(
    transactional_db, tmp_path, settings
):
    workspace = factories.workspace("forwarded")
    channel = factories.email_channel(workspace, name="Forwarded", address="info@shop.example")
    forward_to = f"{channel.uuid.hex}@{settings.LOKET_SMTPD_DOMAIN}"
    mail = customer_mail(subject="Forwarded question", body="Do you ship to Belgium?")
    env = subprocess_env(tmp_path)
    port, process = _smtpd(tmp_path, env)
    with process as running:
        _wait_for_port(port, running)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("emily@customer.example", ["nobody@elsewhere.example"], bytes(mail))
            refused = client.sendmail("emily@customer.example", [forward_to], bytes(mail))
        assert refused == {}
        # 250 came back: the mail is committed already.
        message = Message.objects.get(channel=channel)
        assert message.text.strip() == "Do you ship to Belgium?"
        assert message.data["email"]["source"] == "smtp"

    down = subprocess_env(
        tmp_path,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/x",
        LOKET_DB_POOL_TIMEOUT="2",
    )
    port, process = _smtpd(tmp_path, down)
    with process as running:
        _wait_for_port(port, running)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("emily@customer.example")
            code, _ = client.rcpt(forward_to)
            assert 400 <= code < 500  # try again later: nothing was lost
    assert Message.objects.filter(channel=channel).count() == 1
    assert Conversation.objects.get(channel=channel).status == ConversationStatus.OPEN
