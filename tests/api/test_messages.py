"""Messages of a conversation: the timeline in order, replies (queued and sent by a worker) and
internal notes (never sent)."""

from __future__ import annotations

import pytest

from loket.inbox.models import Conversation, Message
from loket.inbox.services import outbound
from tests import factories
from tests.api.conftest import assert_error, send_tasks


@pytest.fixture
def conversation(api_channel):
    result = factories.inbound(api_channel, "My order is late", contact_id="m-1", name="Mia")
    return Conversation.objects.get(pk=result.conversation_id)


def test_list_is_chronological(api, api_channel, conversation, owner):
    outbound.reply(conversation, author=owner, text="Looking into it")
    outbound.reply(conversation, author=owner, text="Courier called", kind="note")
    factories.inbound(api_channel, "Thanks!", contact_id="m-1")
    response = api.get(f"/conversations/{conversation.pk}/messages")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [m["text"] for m in items] == [
        "My order is late", "Looking into it", "Courier called", "Thanks!",
    ]  # fmt: skip
    assert [m["direction"] for m in items] == ["in", "out", "out", "in"]
    assert [m["kind"] for m in items] == ["message", "message", "note", "message"]
    assert items[0]["author_type"] == "contact" and items[0]["author_name"] == "Mia"
    assert items[1]["author_type"] == "member" and items[1]["author_id"] == owner.pk
    assert response.json()["next_cursor"] is None


def test_list_pages_by_keyset(api, conversation, owner):
    for i in range(6):
        outbound.reply(conversation, author=owner, text=f"r{i}")
    texts, cursor = [], None
    for _ in range(10):
        page = api.get(
            f"/conversations/{conversation.pk}/messages?limit=2"
            + (f"&cursor={cursor}" if cursor else "")
        ).json()
        texts += [m["text"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert texts == ["My order is late", "r0", "r1", "r2", "r3", "r4", "r5"]
    assert_error(
        api.get(f"/conversations/{conversation.pk}/messages?cursor=zzz"), 400, "bad_cursor"
    )
    assert_error(api.get(f"/conversations/{conversation.pk}/messages?limit=0"), 400, "invalid")


def test_create_a_reply_is_queued_with_its_send_task(api, conversation, owner):
    response = api.post(f"/conversations/{conversation.pk}/messages", {"text": "On its way"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["kind"] == "message" and body["direction"] == "out"
    assert body["author_type"] == "member" and body["author_id"] == owner.pk
    assert body["conversation_id"] == conversation.pk
    message = Message.objects.get(pk=body["id"])
    assert message.text == "On its way" and message.workspace_id == conversation.workspace_id
    assert len(send_tasks(message.pk)) == 1
    conversation.refresh_from_db()
    assert conversation.first_response_at is not None


def test_create_a_note_is_never_sent(api, conversation):
    before = len(send_tasks())
    response = api.post(
        f"/conversations/{conversation.pk}/messages", {"text": "VIP customer", "kind": "note"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "note"
    assert body["status"] == ""
    assert len(send_tasks()) == before
    conversation.refresh_from_db()
    assert conversation.first_response_at is None


@pytest.mark.parametrize(
    "body",
    [{"text": ""}, {"text": "   \n "}, {}, {"text": None}, {"text": "hi", "kind": "activity"}],
    ids=["empty", "blank", "missing", "null", "activity"],
)
def test_create_with_bad_input_is_400_invalid(api, conversation, body):
    before = Message.objects.count()
    response = api.post(f"/conversations/{conversation.pk}/messages", body)
    assert_error(response, 400, "invalid")
    assert Message.objects.count() == before
    assert send_tasks() == []


def test_retry_a_failed_reply(api, conversation, owner):
    message = outbound.reply(conversation, author=owner, text="Hello?")
    conflict = api.post(f"/conversations/{conversation.pk}/messages/{message.pk}/retry")
    assert_error(conflict, 409, "conflict")
    outbound.mark_failed(message.pk, "bounced")
    response = api.post(f"/conversations/{conversation.pk}/messages/{message.pk}/retry")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    assert response.json()["error"] == ""
    assert len(send_tasks(message.pk)) == 2


def test_retry_a_message_of_another_conversation_is_404(api, api_channel, conversation, owner):
    other = Conversation.objects.get(
        pk=factories.inbound(api_channel, "Other", contact_id="m-2").conversation_id
    )
    message = outbound.reply(other, author=owner, text="Elsewhere")
    outbound.mark_failed(message.pk, "bounced")
    response = api.post(f"/conversations/{conversation.pk}/messages/{message.pk}/retry")
    assert_error(response, 404, "not_found")
    message.refresh_from_db()
    assert message.status == "failed"


def test_messages_of_an_unknown_conversation_are_404(api, db):
    assert_error(api.get("/conversations/987654321/messages"), 404, "not_found")
    assert_error(api.post("/conversations/987654321/messages", {"text": "x"}), 404, "not_found")
