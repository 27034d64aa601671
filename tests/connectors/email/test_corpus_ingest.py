"""Every mail of the corpus (tests/connectors/email/corpus) through the real ingest path, as the
IMAP poller and ``loket smtpd`` hand it over (``journal.record``): none raises; each gives the
expected conversation and message, a failed-delivery status for a bounce, or a journaled,
visible error. The parser's own expectations per file are in corpus/expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Attachment,
    Conversation,
    DeliveryStatus,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import journal, outbound
from tests import factories

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def channel(workspace):
    return factories.email_channel(workspace, name="Corpus")


def record(channel, name: str, raw: bytes | None = None):
    raw = raw if raw is not None else (CORPUS / name).read_bytes()
    return journal.record(channel, raw, {"source": "imap"}, content_type="message/rfc822")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_corpus_mail_is_stored_as_expected_or_journaled_visibly(
    channel, owner, name, settings
):
    expected = MANIFEST[name]
    options = expected.get("options") or {}
    if options.get("trusted_authserv_ids"):
        channel.settings["trusted_authserv_ids"] = options["trusted_authserv_ids"]
        channel.save()
    if options.get("max_attachment_bytes"):
        settings.LOKET_ATTACHMENT_MAX_BYTES = options["max_attachment_bytes"]
    raw = (CORPUS / name).read_bytes()
    bounce = expected["bounce"]
    reply = None
    if bounce and bounce.get("original_message_id") and bounce.get("permanent"):
        # The mail the bounce returns, as a reply Loket sent: its Message-ID in the report.
        first = factories.inbound(channel, "Question", contact_id="someone@customer.example")
        conversation = Conversation.objects.get(pk=first.conversation_id)
        reply = outbound.reply(conversation, author=owner, text="Answer")
        ours = get_connector("email").outbound_message_id(channel, reply)
        Message.objects.filter(pk=reply.pk).update(status=DeliveryStatus.SENT, external_id=ours)
        raw = raw.replace(bounce["original_message_id"].encode(), ours.encode())

    outcome = record(channel, name, raw)
    event = InboundEvent.objects.get(pk=outcome.event_id)
    assert bytes(event.payload) == raw  # the raw mail is kept as it came

    if reply is not None:
        reply.refresh_from_db()
        assert reply.status == DeliveryStatus.FAILED
        assert reply.error
        return
    if bounce:  # a delayed delivery, or a bounce for a mail Loket cannot identify
        assert event.status == InboundStatus.IGNORED
        assert not Message.objects.filter(channel=channel).exists()
        return
    if expected["sender"] is None:
        assert event.status == InboundStatus.FAILED
        assert "From" in event.error  # the reason is visible on the journal row
        return

    assert event.status == InboundStatus.PROCESSED, event.error
    message = Message.objects.get(pk=outcome.results[0].message_id)
    assert message.author_contact.email.lower() == expected["sender"].lower()
    external_id = expected["message_id"] or message.external_id
    assert message.external_id == external_id
    if not expected["message_id"]:
        assert message.external_id.startswith("sha256:")
    conversation = message.conversation
    if "subject" in expected:
        assert conversation.subject == expected["subject"][:255]
    for fragment in expected.get("visible_contains", ()):
        assert fragment in message.text or fragment in message.html
    if expected["quoted"]:
        assert message.data["email"]["quoted_text"] or message.data["email"]["quoted_html"]
    stored = list(Attachment.objects.filter(message=message).order_by("pk"))
    assert [a.filename for a in stored] == [a["filename"] for a in expected["attachments"]]
    assert len(message.data["email"].get("skipped_attachments", [])) == expected["skipped"]
    assert bool(message.data.get("auto_submitted")) == expected["auto_submitted"]
    if expected["authentication"]:
        assert (
            message.data["email"]["authentication"]["dmarc"] == expected["authentication"]["dmarc"]
        )
    for hostile in ("<script", "onerror", "javascript:", "<form", "<iframe", "<style"):
        assert hostile not in message.html.lower()

    # Delivered again (another hop, a poller restart): stored once.
    again = record(channel, name)
    assert InboundEvent.objects.get(pk=again.event_id).status == InboundStatus.DUPLICATE
    assert Message.objects.filter(channel=channel, external_id=external_id).count() == 1


def test_the_whole_corpus_in_one_mailbox_leaves_no_failed_row_unexplained(channel):
    for name in sorted(MANIFEST):
        record(channel, name)
    failed = InboundEvent.objects.filter(channel=channel, status=InboundStatus.FAILED)
    assert all(event.error for event in failed)
    # Only mail without a usable sender fails; bounces of mail Loket did not send are ignored.
    assert failed.count() == sum(1 for e in MANIFEST.values() if e["sender"] is None)
