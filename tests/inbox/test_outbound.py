"""The outbound path end to end in-process: reply() -> send task -> worker -> API channel POST to a
real local HTTP server -> sent / retried / failed, and delivery statuses afterwards."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from loket.connectors import signing
from loket.inbox import tasks
from loket.inbox.items import StatusUpdate
from loket.inbox.models import Conversation, DeliveryStatus, Message, MessageKind
from loket.inbox.services import outbound
from loket.inbox.services.ingest import apply_status
from loket.jobs.worker import Worker, db_now_minus
from tests import factories
from tests.jobs.receiver import running_receiver

SEND = tasks.send_message.module_path


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


@pytest.fixture
def channel(workspace, receiver):
    return factories.api_channel(workspace, outbound_url=receiver.url)


@pytest.fixture
def conversation(channel):
    result = factories.inbound(channel, "Where is my order?", contact_id="cust-42")
    return Conversation.objects.get(pk=result.conversation_id)


def send_tasks(message: Message) -> list[DBTaskResult]:
    return [
        row
        for row in DBTaskResult.objects.filter(task_path=SEND)
        if row.args_kwargs["args"] == [message.pk]
    ]


def run_send(worker_id: str = "test-worker") -> DBTaskResult:
    worker = Worker(worker_id=worker_id)
    row = worker.claim()
    assert row is not None, "no send task was ready"
    assert row.task_path == SEND
    worker.execute(row)
    row.refresh_from_db()
    return row


# -- reply() ------------------------------------------------------------------------------------


def test_reply_stores_a_queued_message_and_one_send_task(conversation, owner):
    message = outbound.reply(conversation, author=owner, text="  It ships today.  ")

    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert message.text == "It ships today."
    assert message.external_id is None
    [row] = send_tasks(message)
    assert row.status == TaskResultStatus.READY
    assert DBTaskResult.objects.filter(task_path=SEND).count() == 1


def test_a_note_is_not_sent(conversation, owner):
    note = outbound.reply(conversation, author=owner, text="VIP customer", kind=MessageKind.NOTE)
    assert note.status == ""
    assert DBTaskResult.objects.count() == 0


def test_a_rolled_back_reply_leaves_neither_message_nor_task(conversation, owner):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbound.reply(conversation, author=owner, text="Never mind")
        raise RuntimeError("the caller's transaction fails later")

    assert not Message.objects.filter(text="Never mind").exists()
    assert DBTaskResult.objects.count() == 0


def test_the_message_is_not_stored_when_its_task_cannot_be_enqueued(
    conversation, owner, monkeypatch
):
    class Unqueueable:
        def enqueue(self, *args):
            raise RuntimeError("task table unavailable")

    monkeypatch.setattr(tasks, "send_message", Unqueueable())
    with pytest.raises(RuntimeError):
        outbound.reply(conversation, author=owner, text="Lost?")
    assert not Message.objects.filter(text="Lost?").exists()


# -- delivery -----------------------------------------------------------------------------------


def test_the_worker_delivers_a_signed_post_and_records_sent(conversation, owner, channel, receiver):
    message = outbound.reply(conversation, author=owner, text="It ships today.")

    row = run_send()

    assert row.status == TaskResultStatus.SUCCESSFUL
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.path == "/loket/outbound"
    assert request.headers["content-type"] == "application/json"
    signing.verify(channel.secrets["secret"], request.body, request.headers["x-loket-signature"])
    with pytest.raises(signing.InvalidSignature):
        signing.verify("whsec_other", request.body, request.headers["x-loket-signature"])

    body = json.loads(request.body)
    assert set(body) == {"type", "id", "conversation_id", "contact", "text", "author", "created_at"}
    assert body["type"] == "message"
    assert body["id"] == f"out_{message.pk}"
    assert body["conversation_id"] == conversation.pk
    assert body["contact"] == {"id": "cust-42"}
    assert body["text"] == "It ships today."
    assert body["author"] == {"name": owner.display_name}
    assert dt.datetime.fromisoformat(body["created_at"]) == message.created_at

    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == f"out_{message.pk}"
    assert message.error == ""
    assert message.send_attempts == 1
    assert message.sent_at is not None


def test_a_503_with_retry_after_requeues_the_message(conversation, owner, receiver):
    message = outbound.reply(conversation, author=owner, text="Are you there?")
    receiver.respond(503, b"maintenance", {"Retry-After": "7"})

    before = timezone.now()
    row = run_send()
    after = timezone.now()

    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED
    assert message.error.startswith("Retrying")
    assert "HTTP 503" in message.error
    assert message.send_attempts == 1
    assert row.status == TaskResultStatus.READY
    assert before + dt.timedelta(seconds=6) <= row.run_after <= after + dt.timedelta(seconds=8)
    assert Worker(worker_id="impatient").claim() is None  # not before Retry-After

    # When it is due, the next attempt goes through.
    DBTaskResult.objects.filter(pk=row.pk).update(run_after=db_now_minus(1))
    row = run_send("second-worker")
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.worker_ids == ["test-worker", "second-worker"]
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.error == ""
    assert message.send_attempts == 2
    assert len(receiver.requests) == 2
    assert {json.loads(r.body)["id"] for r in receiver.requests} == {f"out_{message.pk}"}


def test_a_400_fails_the_message_with_the_reason(conversation, owner, receiver):
    message = outbound.reply(conversation, author=owner, text="Hi")
    receiver.respond(400, b'{"error":"unknown contact"}')

    row = run_send()

    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert "HTTP 400" in message.error
    assert "unknown contact" in message.error
    assert row.status == TaskResultStatus.SUCCESSFUL  # recorded for good; no retry
    assert Worker(worker_id="again").claim() is None
    assert len(receiver.requests) == 1


def test_a_private_outbound_url_is_blocked_without_allow_private(
    conversation, owner, receiver, settings
):
    settings.LOKET_HTTP_ALLOW_PRIVATE = False
    message = outbound.reply(conversation, author=owner, text="Hi")

    run_send()

    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert "private or reserved address" in message.error
    assert "127.0.0.1" in message.error
    assert receiver.requests == []


def test_a_channel_without_outbound_url_fails_the_message(workspace, owner):
    channel = factories.api_channel(workspace, outbound_url="", name="No URL")
    result = factories.inbound(channel, "Hello")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    message = outbound.reply(conversation, author=owner, text="Hi")

    run_send()

    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert "outbound_url" in message.error


# -- after sending ------------------------------------------------------------------------------


def test_delivery_statuses_only_move_forward(conversation, owner, channel):
    message = outbound.reply(conversation, author=owner, text="Hi")
    run_send()
    external_id = f"out_{message.pk}"

    read = apply_status(channel, StatusUpdate(external_id=external_id, status="read"))
    assert read.outcome == "status_applied"
    late = apply_status(channel, StatusUpdate(external_id=external_id, status="delivered"))
    assert late.outcome == "status_stale"
    failed = apply_status(channel, StatusUpdate(external_id=external_id, status="failed"))
    assert failed.outcome == "status_stale"

    message.refresh_from_db()
    assert message.status == DeliveryStatus.READ


def test_retry_of_a_failed_message_requeues_and_sends_it(conversation, owner, receiver):
    message = outbound.reply(conversation, author=owner, text="Hi")
    receiver.respond(422, b"contact blocked")
    run_send()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED

    message = outbound.retry(message)

    assert message.status == DeliveryStatus.QUEUED
    assert message.error == ""
    # The first send task finished (it recorded the failure); retry() added a new one.
    assert sorted(row.status for row in send_tasks(message)) == sorted(
        [TaskResultStatus.SUCCESSFUL, TaskResultStatus.READY]
    )
    run_send()
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert len(receiver.requests) == 2


def test_only_a_failed_message_can_be_retried(conversation, owner):
    message = outbound.reply(conversation, author=owner, text="Hi")
    with pytest.raises(ValueError, match="only a failed message"):
        outbound.retry(message)
    assert len(send_tasks(message)) == 1


def test_a_provider_can_report_a_sent_message_as_failed(conversation, owner, channel):
    message = outbound.reply(conversation, author=owner, text="Hi")
    run_send()
    update = StatusUpdate(external_id=f"out_{message.pk}", status="failed", error="undeliverable")

    assert apply_status(channel, update).outcome == "status_applied"
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert message.error == "undeliverable"


def test_an_inbound_id_equal_to_our_outbound_id_does_not_block_sending(
    conversation, owner, channel, receiver
):
    # An integrator that mirrors messages may send us an inbound message whose id equals the id
    # of one of our replies; the namespaces are separate, so the reply is sent exactly once.
    message = outbound.reply(conversation, author=owner, text="Hi")
    factories.inbound(channel, "mirror", message_id=f"out_{message.pk}", contact_id="mirror")
    assert run_send().status == "SUCCESSFUL"
    message.refresh_from_db()
    assert (message.status, message.external_id) == (DeliveryStatus.SENT, f"out_{message.pk}")
    assert len(receiver.requests) == 1


def test_the_first_response_time_is_kept_by_later_replies(conversation, owner):
    outbound.reply(conversation, author=owner, text="First")
    conversation.refresh_from_db()
    first = conversation.first_response_at
    assert first is not None
    outbound.reply(conversation, author=owner, text="Second")
    conversation.refresh_from_db()
    assert conversation.first_response_at == first
