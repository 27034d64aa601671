"""Storing notifications, pushing them to their recipient only, unread counts."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from loket.asgi import application
from loket.inbox.models import Conversation, Notification, NotificationKind
from loket.inbox.services import notifications
from loket.inbox.services.conversations import InvalidChange
from loket.inbox.services.notifications import (
    mark_read,
    mention_token,
    notify,
    notify_mentions,
    unread_count,
)
from loket.tenancy.services import add_member, create_api_token
from tests import factories
from tests.merging.builders import conversation_of, note, reply
from tests.realtime.communicator import WebsocketCommunicator

WAIT = 5  # seconds: a bound on waits for something that should arrive, not a speed claim


def member(workspace, email, name):
    return add_member(workspace, factories.user(email, name=name))


@pytest.fixture
def team(workspace, owner):
    return {
        "author": owner,
        "bob": member(workspace, "bob@acme.example", "Bob Jansen"),
        "carol": member(workspace, "carol@acme.example", "Carol Peters"),
    }


@pytest.fixture
def conversation(api_channel):
    return conversation_of(factories.inbound(api_channel, "My parcel is lost"))


def test_one_notification_per_mentioned_member_never_to_the_author(team, conversation):
    text = f"@bob @carol {mention_token(team['author'])} have a look, @bob"
    remark = note(conversation, team["author"], text)

    created = notify_mentions(remark, actor=team["author"])

    assert [n.recipient for n in created] == [team["bob"], team["carol"]]
    stored = Notification.objects.order_by("pk")
    assert [
        (n.recipient_id, n.kind, n.conversation_id, n.message_id, n.actor_id) for n in stored
    ] == [
        (team[who].pk, NotificationKind.MENTION, conversation.pk, remark.pk, team["author"].pk)
        for who in ("bob", "carol")
    ]


def test_a_reply_to_the_customer_mentions_nobody(team, conversation):
    answer = reply(conversation, team["author"], "Thanks @bob")
    assert notify_mentions(answer, actor=team["author"]) == []
    assert not Notification.objects.exists()


def test_nobody_is_notified_of_their_own_action(team, conversation):
    bob = team["bob"]
    assert notify(bob, kind=NotificationKind.ASSIGNED, conversation=conversation, actor=bob) is None
    assert not Notification.objects.exists()


def test_members_and_conversations_of_different_workspaces_are_refused(team, conversation):
    other = factories.workspace("other")
    outsider = factories.owner_of(other)
    foreign = conversation_of(factories.inbound(factories.api_channel(other), "Hi"))
    attempts = [
        dict(recipient=outsider, conversation=conversation),
        dict(recipient=team["bob"], conversation=foreign),
        dict(recipient=team["bob"], conversation=conversation, actor=outsider),
    ]
    for attempt in attempts:
        recipient = attempt.pop("recipient")
        with pytest.raises(InvalidChange, match="different workspaces"):
            notify(recipient, kind=NotificationKind.ASSIGNED, **attempt)
    assert not Notification.objects.exists()


def test_unread_count_and_mark_read_concern_only_their_member(team, conversation):
    remark = note(conversation, team["author"], "@bob @carol")
    notify_mentions(remark, actor=team["author"])
    notify(team["bob"], kind=NotificationKind.ASSIGNED, conversation=conversation)
    bob, carol = team["bob"], team["carol"]
    assert (unread_count(bob), unread_count(carol)) == (2, 1)

    carols = Notification.objects.get(recipient=carol).pk
    assert mark_read(bob, ids=[carols]) == 0  # someone else's notification is not touched
    first = Notification.objects.filter(recipient=bob).order_by("pk").first()
    assert mark_read(bob, ids=[first.pk]) == 1
    assert (unread_count(bob), unread_count(carol)) == (1, 1)
    assert mark_read(bob) == 1
    assert (unread_count(bob), unread_count(carol)) == (0, 1)


def test_the_unread_count_stops_at_the_cap(team, conversation):
    Notification.objects.bulk_create(
        Notification(
            workspace_id=conversation.workspace_id,
            recipient=team["bob"],
            kind=NotificationKind.MESSAGE,
            conversation=conversation,
        )
        for _ in range(notifications.UNREAD_CAP + 1)
    )
    assert unread_count(team["bob"]) == notifications.UNREAD_CAP


# -- realtime: the recipient's sockets only ------------------------------------------------------
def _bearer(membership) -> list[tuple[bytes, bytes]]:
    _, raw = create_api_token(membership, name="notifications test")
    return [(b"authorization", f"Bearer {raw}".encode())]


async def _open(headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, code = await communicator.connect(timeout=WAIT)
    assert connected, code
    assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "hello"
    return communicator


async def _until(communicator, matches) -> list[dict]:
    received = []
    while True:
        event = await communicator.receive_json_from(timeout=WAIT)
        received.append(event)
        if matches(event):
            return received


def _mention(channel, author, text) -> tuple[Conversation, int, list[Notification]]:
    conversation = conversation_of(factories.inbound(channel, "My parcel is lost"))
    remark = note(conversation, author, text)
    return conversation, remark.pk, notify_mentions(remark, actor=author)


def test_a_mention_is_pushed_to_the_mentioned_member_only(transactional_db, channel_layer):
    workspace = factories.workspace("acme")
    channel = factories.api_channel(workspace)
    author = factories.owner_of(workspace)
    bob = member(workspace, "bob@acme.example", "Bob Jansen")
    carol = member(workspace, "carol@acme.example", "Carol Peters")
    headers = {"bob": _bearer(bob), "carol": _bearer(carol)}

    async def scenario():
        bob_socket = await _open(headers["bob"])
        carol_socket = await _open(headers["carol"])

        conversation, note_id, [stored] = await database_sync_to_async(_mention)(
            channel, author, f"{mention_token(bob)} can you call the carrier?"
        )

        received = await _until(bob_socket, lambda e: e["type"] == "notification.created")
        pushed = received[-1]
        assert pushed == {
            "type": "notification.created",
            "workspace_id": workspace.pk,
            "id": stored.pk,
            "recipient_id": bob.pk,
            "kind": "mention",
            "conversation_id": conversation.pk,
            "conversation_number": conversation.number,
            "message_id": note_id,
            "actor_id": author.pk,
            "title": f"{author.display_name} mentioned you in #{conversation.number}",
            "text": "@Bob Jansen can you call the carrier?",
            "url": f"/w/acme/inbox/{conversation.number}/?message={note_id}#m{note_id}",
            "created_at": stored.created_at.isoformat(),
        }
        # Carol sees the note like every agent does, and nothing addressed to Bob.
        await _until(carol_socket, lambda e: e.get("message_id") == note_id)
        assert await carol_socket.receive_nothing(timeout=0.5)
        assert await bob_socket.receive_nothing(timeout=0.2)  # and Bob got it once
        await bob_socket.disconnect()
        await carol_socket.disconnect()

    async_to_sync(scenario)()
