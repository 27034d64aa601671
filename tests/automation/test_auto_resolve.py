"""Auto-resolve: conversations pending on the customer for N days get the closing message and are
resolved, once per pending episode, never when the customer wrote last, per channel or for the
workspace, and not twice by two workers."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from loket.automation import autoreplies, autoresolve, clock
from loket.automation.models import AutoReplyKind
from loket.inbox.models import Conversation, ConversationStatus, Message, MessageKind
from loket.inbox.services import outbound
from loket.inbox.services.conversations import update_conversation
from loket.tenancy.services import NotAllowed
from loket.web.inbox.timeline import activity_sentence
from tests import factories
from tests.connectors.providers import run_tasks

CLOSING = "Hi {{contact.first_name|there}}, we are closing this for now. Just reply to reopen."


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


def customer_writes(channel, text="Hi", *, contact_id="cust-1", name="Sanne de Vries"):
    result = factories.inbound(channel, text, contact_id=contact_id, name=name)
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def waiting_on_customer(channel, agent, contact_id="cust-1"):
    conversation = customer_writes(channel, "Where is my order?", contact_id=contact_id)
    outbound.reply(conversation, author=agent, text="Which order number?")
    update_conversation(conversation, actor=agent, status=ConversationStatus.PENDING)
    conversation.refresh_from_db()
    return conversation


def closings(conversation):
    return list(
        Message.objects.filter(conversation=conversation, data__auto_reply="closing").order_by("pk")
    )


def later(days, hours=0):
    return clock.frozen(timezone.now() + dt.timedelta(days=days, hours=hours))


def test_after_n_days_pending_the_closing_message_goes_and_it_is_resolved(shop, workspace, agent):
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=3)
    conversation = waiting_on_customer(shop, agent)
    with later(2, 23):
        assert autoresolve.run() == 0
    with later(3, 1):
        assert autoresolve.run() == 1
        assert autoresolve.run() == 0  # once
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    [message] = closings(conversation)
    assert message.text == ("Hi Sanne, we are closing this for now. Just reply to reopen.")
    assert message.author_type == "system"
    line = Message.objects.filter(
        conversation=conversation,
        kind=MessageKind.ACTIVITY,
        data__action="status_changed",
        data__status="resolved",
    ).get()
    assert line.data["via"] == "auto_resolve" and line.author_member_id is None
    assert activity_sentence(line, "System") == (
        "Resolved automatically after 3 days without an answer"
    )


def test_off_by_default_and_when_disabled(shop, workspace, agent):
    conversation = waiting_on_customer(shop, agent)
    with later(100):
        assert autoresolve.run() == 0
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=1, enabled=False)
    with later(100):
        assert autoresolve.run() == 0
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.PENDING


def test_never_when_the_customer_wrote_last(shop, workspace, agent):
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=1)
    conversation = customer_writes(shop, "Hello")
    update_conversation(conversation, actor=agent, status=ConversationStatus.PENDING)
    with later(5):
        assert autoresolve.run() == 0
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.PENDING


def test_each_pending_episode_counts_from_its_own_start(shop, workspace, agent):
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=2)
    conversation = waiting_on_customer(shop, agent)
    start = timezone.now()
    with clock.frozen(start + dt.timedelta(days=1)):
        update_conversation(conversation, actor=agent, status=ConversationStatus.OPEN)
    # Pending again a day later (the activity line is stored at the real "now"; move it).
    update_conversation(conversation, actor=agent, status=ConversationStatus.PENDING)
    latest = (
        Message.objects.filter(conversation=conversation, data__status="pending")
        .order_by("-pk")
        .first()
    )
    Message.objects.filter(pk=latest.pk).update(created_at=start + dt.timedelta(days=1))
    with clock.frozen(start + dt.timedelta(days=2, hours=12)):
        assert autoresolve.run() == 0  # 1.5 days into this episode
    with clock.frozen(start + dt.timedelta(days=3, hours=1)):
        assert autoresolve.run() == 1


def test_a_channels_own_setting_wins_and_can_switch_it_off(shop, workspace, agent):
    chat = factories.api_channel(workspace, name="Chat")
    mail = factories.api_channel(workspace, name="Mail")
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=5)
    autoreplies.configure(
        workspace, AutoReplyKind.CLOSING, body="Closing the chat.", days=1, channel=chat
    )
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body="", enabled=False, channel=mail)
    on_shop = waiting_on_customer(shop, agent, "a")
    on_chat = waiting_on_customer(chat, agent, "b")
    on_mail = waiting_on_customer(mail, agent, "c")
    with later(2):
        assert autoresolve.run() == 1
    assert [m.text for m in closings(on_chat)] == ["Closing the chat."]
    with later(6):
        assert autoresolve.run() == 1
    for conversation, status in (
        (on_shop, ConversationStatus.RESOLVED),
        (on_chat, ConversationStatus.RESOLVED),
        (on_mail, ConversationStatus.PENDING),
    ):
        conversation.refresh_from_db()
        assert conversation.status == status


def test_settings_are_checked(workspace, agent):
    with pytest.raises(autoreplies.InvalidAutoReply):
        autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=0)
    with pytest.raises(autoreplies.InvalidAutoReply):
        autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=91)
    with pytest.raises(autoreplies.InvalidAutoReply):
        autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING)
    with pytest.raises(autoreplies.InvalidAutoReply):
        autoreplies.configure(workspace, AutoReplyKind.GREETING, body="Hi", days=3)
    with pytest.raises(NotAllowed):
        autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=3, actor=agent)


def test_the_api_sets_days(workspace, owner):
    api = factories.ApiClient(owner)
    answer = api.put("/auto-replies", {"kind": "closing", "body": CLOSING, "days": 7})
    assert answer.status_code == 200, answer.content
    assert answer.json()["days"] == 7
    bad = api.put("/auto-replies", {"kind": "closing", "body": CLOSING, "days": 365})
    assert bad.status_code == 400


@pytest.mark.postgres  # row locks (SQLite has one writer)
def test_two_workers_resolve_it_once(shop, workspace, agent):
    autoreplies.configure(workspace, AutoReplyKind.CLOSING, body=CLOSING, days=1)
    conversation = waiting_on_customer(shop, agent)
    results: list[int] = []
    barrier = threading.Barrier(2)
    moment = timezone.now() + dt.timedelta(days=2)

    def worker():
        try:
            barrier.wait()
            with clock.frozen(moment):
                results.append(autoresolve.run())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert len(closings(conversation)) == 1
