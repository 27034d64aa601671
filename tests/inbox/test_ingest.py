"""receive(): contacts, threading, reopening, the journal's failure and replay paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from loket.inbox.items import (
    Ignored,
    InboundAttachment,
    InboundContact,
    InboundMessage,
    StatusUpdate,
)
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationStatus,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import journal, media
from loket.inbox.services.conversations import update_conversation, wake_due_snoozed
from loket.inbox.services.ingest import receive
from loket.jobs.worker import Worker
from tests import factories


def test_a_first_message_creates_contact_identity_and_conversation(api_channel):
    result = factories.inbound(api_channel, "Hello", contact_id="c-9", name="Ann", email="a@x.org")
    assert result.outcome == "created"
    conversation = Conversation.objects.get(pk=result.conversation_id)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.number == 1
    assert conversation.waiting_since is not None
    assert conversation.contact.name == "Ann"
    identity = ContactIdentity.objects.get()
    assert (identity.channel_id, identity.external_id) == (api_channel.pk, "c-9")


def test_a_new_conversation_is_stored_whole_with_its_defaults(api_channel):
    # The first message's contact and conversation are written without the ORM (hot path):
    # every column is what Model.objects.create() would have stored.
    result = factories.inbound(api_channel, contact_id="c-new", name="Ann")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    assert (conversation.priority, conversation.language, conversation.subject) == (0, "", "")
    assert (conversation.custom_attributes, conversation.sla_clock) == ({}, {})
    assert conversation.team_id == api_channel.default_team_id
    assert conversation.created_at <= conversation.updated_at
    contact = conversation.contact
    assert (contact.name, contact.email, contact.attributes) == ("Ann", "", {})
    assert contact.load_remote_images is False and contact.blocked_at is None
    assert contact.created_at is not None and contact.updated_at is not None


def test_a_redelivery_with_another_sender_id_is_a_duplicate_and_creates_no_contact(api_channel):
    first = factories.inbound(api_channel, "Hello", message_id="m-1", contact_id="c-old")
    again = factories.inbound(api_channel, "Hello", message_id="m-1", contact_id="c-renamed")
    assert (first.outcome, again.outcome) == ("created", "duplicate")
    assert Contact.objects.count() == 1
    assert not ContactIdentity.objects.filter(external_id="c-renamed").exists()


def test_numbers_count_up_per_workspace(api_channel):
    other = factories.api_channel(factories.workspace())
    numbers = [
        Conversation.objects.get(pk=factories.inbound(ch, contact_id=cid).conversation_id).number
        for ch, cid in [(api_channel, "a"), (api_channel, "b"), (other, "a"), (api_channel, "c")]
    ]
    assert numbers == [1, 2, 1, 3]


def test_later_messages_thread_into_the_open_conversation(api_channel):
    first = factories.inbound(api_channel, "one", contact_id="c")
    second = factories.inbound(api_channel, "two", contact_id="c")
    assert first.conversation_id == second.conversation_id
    assert Conversation.objects.count() == 1
    assert Contact.objects.count() == 1


def test_a_message_continuing_a_conversation_takes_one_statement_and_a_redelivery_stores_nothing(
    api_channel,
):
    first = factories.inbound(api_channel, "one", contact_id="c")
    with CaptureQueriesContext(connection) as queries:
        second = factories.inbound(api_channel, "two", contact_id="c", message_id="m-2")
        again = factories.inbound(api_channel, "two", contact_id="c", message_id="m-2")
    assert (second.outcome, second.conversation_id) == ("created", first.conversation_id)
    assert again.outcome == "duplicate"
    assert list(Message.objects.order_by("pk").values_list("text", flat=True)) == ["one", "two"]
    conversation = Conversation.objects.get()
    assert conversation.last_inbound_at == Message.objects.get(external_id="m-2").created_at
    if connection.vendor == "postgresql":  # the sender, the message and the conversation at once
        assert len(queries) == 2, [q["sql"] for q in queries]


def test_known_contact_details_are_filled_in_but_never_overwritten(api_channel):
    factories.inbound(api_channel, contact_id="c", name="")
    contact = Contact.objects.get()
    contact.name = "Corrected By Agent"
    contact.save()
    factories.inbound(api_channel, contact_id="c", name="Sender Name", email="new@example.org")
    contact.refresh_from_db()
    assert contact.name == "Corrected By Agent"
    assert contact.email == "new@example.org"


def test_a_reply_to_a_recently_resolved_conversation_reopens_it(api_channel, owner):
    first = factories.inbound(api_channel, contact_id="c")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    again = factories.inbound(api_channel, contact_id="c")
    assert again.conversation_id == conversation.pk
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.resolved_at is None


def test_after_the_reopen_window_a_new_conversation_starts(api_channel, owner, settings):
    first = factories.inbound(api_channel, contact_id="c")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - dt.timedelta(days=settings.LOKET_REOPEN_WITHIN_DAYS + 1)
    )
    again = factories.inbound(api_channel, contact_id="c")
    assert again.conversation_id != conversation.pk
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED


def test_a_closed_conversation_is_never_reopened(api_channel, owner):
    first = factories.inbound(api_channel, contact_id="c")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    update_conversation(conversation, actor=owner, status=ConversationStatus.CLOSED)
    assert factories.inbound(api_channel, contact_id="c").conversation_id != conversation.pk


def test_a_customer_reply_wakes_a_snoozed_conversation(api_channel, owner):
    first = factories.inbound(api_channel, contact_id="c")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    update_conversation(
        conversation, actor=owner, status=ConversationStatus.SNOOZED, snoozed_until=None
    )
    factories.inbound(api_channel, contact_id="c")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN


def test_due_snoozes_wake_up_and_future_ones_do_not(api_channel, owner):
    due = Conversation.objects.get(
        pk=factories.inbound(api_channel, contact_id="a").conversation_id
    )
    later = Conversation.objects.get(
        pk=factories.inbound(api_channel, contact_id="b").conversation_id
    )
    now = timezone.now()
    update_conversation(
        due, actor=owner, status="snoozed", snoozed_until=now - dt.timedelta(minutes=1)
    )
    update_conversation(later, actor=owner, status="snoozed", snoozed_until=now + dt.timedelta(1))
    assert wake_due_snoozed() == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == ("open", "snoozed")
    assert due.messages.filter(kind="activity", data__action="status_changed").count() == 2


def test_a_rolled_back_ingest_leaves_nothing(api_channel):
    with pytest.raises(RuntimeError), transaction.atomic():
        factories.inbound(api_channel, contact_id="c")
        raise RuntimeError("the caller failed after receive()")
    assert not Message.objects.exists()
    assert not Contact.objects.exists()


def test_inbound_html_is_sanitised_before_it_is_stored(api_channel):
    item = InboundMessage(
        external_id="h1",
        contact=InboundContact("c"),
        text="hi",
        html='<p onclick="steal()">Hi<script>alert(1)</script><a href="javascript:x">l</a></p>',
    )
    receive(api_channel, item)
    html = Message.objects.get().html
    assert "script" not in html and "onclick" not in html and "javascript" not in html
    assert "<p>Hi" in html


def test_ignored_items_store_nothing(api_channel):
    assert receive(api_channel, Ignored("typing")).outcome == "ignored"
    assert not Message.objects.exists()


def test_a_processing_error_keeps_the_journal_row_and_schedules_a_replay(api_channel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("loket.inbox.services.journal.receive", broken)
    body = b'{"id": "m1", "contact": {"id": "c"}, "text": "hello"}'
    outcome = journal.record(api_channel, body, {})
    assert outcome.status == InboundStatus.FAILED
    assert not outcome.bad_payload
    event = InboundEvent.objects.get()
    assert "disk on fire" in event.error
    assert not Message.objects.exists()
    task = DBTaskResult.objects.get()
    assert task.task_path.endswith("replay_inbound_event")
    assert task.args_kwargs["args"] == [event.pk]

    monkeypatch.undo()
    assert journal.replay(event.pk) == InboundStatus.PROCESSED
    event.refresh_from_db()
    assert (event.status, event.error, event.attempts) == (InboundStatus.PROCESSED, "", 2)
    assert Message.objects.get().external_id == "m1"


def test_a_status_for_a_message_not_sent_yet_is_retried_until_it_matches(api_channel):
    outcome = journal.record(
        api_channel, b'{"type": "status", "id": "out_1", "status": "delivered"}', {}
    )
    assert outcome.status == InboundStatus.FAILED
    assert DBTaskResult.objects.filter(task_path__endswith="replay_inbound_event").exists()


def test_statuses_only_move_forward(api_channel, owner):
    from loket.inbox.services.outbound import reply

    conversation = Conversation.objects.get(pk=factories.inbound(api_channel).conversation_id)
    message = reply(conversation, author=owner, text="Thanks!")
    Message.objects.filter(pk=message.pk).update(status="sent", external_id="out_x")
    assert receive(api_channel, StatusUpdate("out_x", "read")).outcome == "status_applied"
    assert receive(api_channel, StatusUpdate("out_x", "delivered")).outcome == "status_stale"
    assert receive(api_channel, StatusUpdate("out_x", "failed")).outcome == "status_stale"
    message.refresh_from_db()
    assert message.status == "read"


class _FileServer(http.server.BaseHTTPRequestHandler):
    files = {"/receipt.pdf": b"%PDF-1.4 tiny receipt", "/big.bin": b"x" * 2048}

    def do_GET(self):
        content = self.files.get(self.path)
        if content is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _run_tasks():
    worker = Worker(heartbeat_seconds=3600)
    while (row := worker.claim()) is not None:
        worker.execute(row)


def test_attachments_show_at_once_and_are_downloaded_in_the_background(
    api_channel, file_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.LOKET_ATTACHMENT_MAX_BYTES = 1024
    item = InboundMessage(
        external_id="att-1",
        contact=InboundContact("c"),
        text="receipt attached",
        attachments=(
            InboundAttachment(
                "../../etc/re\u202eceipt.pdf", "application/pdf", f"{file_server}/receipt.pdf"
            ),
            InboundAttachment("big.bin", url=f"{file_server}/big.bin"),
            InboundAttachment("gone.txt", url=f"{file_server}/missing"),
        ),
    )
    receive(api_channel, item)
    pending = list(Attachment.objects.order_by("pk"))
    assert [a.status for a in pending] == [AttachmentStatus.PENDING] * 3
    assert pending[0].filename == "receipt.pdf"

    _run_tasks()
    receipt, big, gone = Attachment.objects.order_by("pk")
    assert receipt.status == AttachmentStatus.STORED
    assert receipt.sha256 == hashlib.sha256(b"%PDF-1.4 tiny receipt").hexdigest()
    assert receipt.file.read() == b"%PDF-1.4 tiny receipt"
    assert "receipt" not in receipt.file.name  # stored under a random key
    assert (big.status, gone.status) == (AttachmentStatus.FAILED, AttachmentStatus.FAILED)
    assert "limit" in big.error and "404" in gone.error


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\invoice.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        (".hidden", "hidden"),
        ("", "attachment"),
        ("a" * 300 + ".txt", "a" * 196 + ".txt"),
    ],
)
def test_attachment_names_are_only_metadata(given, safe):
    assert media.safe_filename(given) == safe


def test_a_snoozed_conversation_can_be_given_a_new_wake_up_time(api_channel, owner):
    conversation = Conversation.objects.get(pk=factories.inbound(api_channel).conversation_id)
    soon = timezone.now() + dt.timedelta(hours=1)
    update_conversation(conversation, actor=owner, status="snoozed", snoozed_until=soon)
    later = soon + dt.timedelta(days=1)
    update_conversation(conversation, actor=owner, snoozed_until=later)
    conversation.refresh_from_db()
    assert (conversation.status, conversation.snoozed_until) == ("snoozed", later)
    assert conversation.messages.filter(data__action="snooze_changed").count() == 1
