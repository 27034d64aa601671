"""Customer satisfaction in the live chat: after resolve the widget asks for a rating (pushed
live and on the next session); the rating is stored on the conversation, changeable for a
while, and shown to agents."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from loket.connectors.livechat import widget
from loket.connectors.registry import get_connector
from loket.inbox.models import Conversation, ConversationStatus, Message, SatisfactionRating
from loket.inbox.services.channels import create_channel
from loket.inbox.services.conversations import update_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(workspace):
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
    return channel


def post(chat, path, body):
    return Client().post(
        f"/widget/{chat.uuid}/api/{path}", json.dumps(body), content_type="application/json"
    )


def test_a_resolved_chat_is_rated_and_agents_see_it(chat, owner, settings):
    token, visitor = widget.start_session(chat)
    shown = widget.post_message(chat, visitor, client_id="c-1", text="Hi", page=None, ip="1")
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    assert post(chat, "session", {"token": token}).json()["csat"] is None
    early = post(chat, "csat", {"token": token, "conversation_id": conversation.pk, "rating": 5})
    assert early.status_code == 404  # nothing to rate while it is going on

    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    prompt = post(chat, "session", {"token": token}).json()["csat"]
    assert prompt == {"conversation_id": conversation.pk, "rating": None}
    rated = post(
        chat,
        "csat",
        {"token": token, "conversation_id": conversation.pk, "rating": 4, "comment": "Quick!"},
    )
    assert rated.status_code == 200 and rated.json() == {"rating": 4, "comment": "Quick!"}
    changed = post(chat, "csat", {"token": token, "conversation_id": conversation.pk, "rating": 5})
    assert changed.status_code == 200
    given = SatisfactionRating.objects.get(conversation=conversation)
    assert (given.rating, given.comment, given.source) == (5, "", "livechat")
    assert post(chat, "session", {"token": token}).json()["csat"]["rating"] == 5

    client = Client()
    client.force_login(owner.user)
    pane = client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert 'id="csat-rating"' in pane and "5/5" in pane

    SatisfactionRating.objects.filter(pk=given.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.LOKET_CSAT_CHANGE_HOURS + 1)
    )
    late = post(chat, "csat", {"token": token, "conversation_id": conversation.pk, "rating": 1})
    assert late.status_code == 400 and "no longer" in late.json()["error"]["message"]


def test_ratings_are_checked_and_only_for_the_visitors_own_conversation(chat, owner):
    token, visitor = widget.start_session(chat)
    other_token, _ = widget.start_session(chat)
    shown = widget.post_message(chat, visitor, client_id="c-1", text="Hi", page=None, ip="1")
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    body = {"conversation_id": conversation.pk, "rating": 9}
    assert post(chat, "csat", {**body, "token": token}).status_code == 400
    stranger = post(chat, "csat", {**body, "rating": 1, "token": other_token})
    assert stranger.status_code == 404
    assert not SatisfactionRating.objects.exists()


def test_the_long_poll_carries_the_rating_prompt_like_the_session(chat, owner, monkeypatch):
    """The long-poll fallback learns of the prompt too: ``GET messages`` carries ``csat`` as
    ``POST session`` does, and a waiting poll ends when it changes."""
    token, visitor = widget.start_session(chat)
    shown = widget.post_message(chat, visitor, client_id="c-1", text="Hi", page=None, ip="1")
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)

    def poll(wait: int = 0) -> dict:
        response = Client().get(
            f"/widget/{chat.uuid}/api/messages?after={shown['id']}&wait={wait}",
            headers={"X-Loket-Visitor": token},
        )
        assert response.status_code == 200, response.content
        return response.json()

    assert poll()["csat"] is None

    # The agent resolves while the widget's poll is waiting (on its first pause): the poll
    # answers then, with no message, instead of at the end of its wait.
    pauses = []

    def pause(seconds):
        pauses.append(seconds)
        if len(pauses) == 1:
            update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)

    monkeypatch.setattr("loket.connectors.livechat.views.time.sleep", pause)
    answered = poll(wait=3)
    assert answered["messages"] == [] and len(pauses) == 1
    expected = {"conversation_id": conversation.pk, "rating": None}
    assert answered["csat"] == expected
    assert post(chat, "session", {"token": token}).json()["csat"] == expected

    post(chat, "csat", {"token": token, "conversation_id": conversation.pk, "rating": 4})
    assert poll()["csat"] == {"conversation_id": conversation.pk, "rating": 4}
    assert poll()["csat"] == post(chat, "session", {"token": token}).json()["csat"]
