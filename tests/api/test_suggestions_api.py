"""The composer's suggestions over the API: GET /conversations/{id}/suggestions, feedback on
them and the workspace's suggestion quality; other workspaces' ids are 404s (the walk in
test_cross_workspace.py covers every id mix)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from loket.automation import canned
from loket.inbox.models import Conversation
from loket.knowledge.models import SuggestionFeedback
from tests import factories
from tests.api.conftest import assert_error
from tests.knowledge.test_retrieval import ARTICLES, publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def kb(workspace):
    return {key: publish(workspace, *ARTICLES[key]) for key in ("pets", "voucher")}


@pytest.fixture
def conversation(api_channel) -> Conversation:
    result = factories.inbound(
        api_channel,
        "The ferry was an hour late, can I get a voucher? My dog had to wait on the car deck",
    )
    return Conversation.objects.get(pk=result.conversation_id)


def test_suggestions_with_their_sources(api, owner, conversation, kb):
    reply = canned.create_canned_reply(
        owner, shortcut="late", title="Ferry late", body="Sorry the ferry was late.", shared=True
    )
    response = api.get(f"/conversations/{conversation.pk}/suggestions")
    assert response.status_code == 200
    body = response.json()
    assert body["message_id"] == conversation.messages.get().pk
    found = {a["article_id"]: a for a in body["articles"]}
    assert kb["pets"].pk in found and kb["voucher"].pk in found
    assert found[kb["voucher"].pk]["internal"] is True and found[kb["voucher"].pk]["url"] is None
    pets = found[kb["pets"].pk]
    assert set(pets) == {
        "article_id",
        "conversation_id",
        "locale",
        "title",
        "text",
        "internal",
        "confidence",
        "url",
    }
    assert pets["conversation_id"] is None
    assert pets["title"] == "Travelling with pets" and "Dogs and cats" in pets["text"]
    assert body["canned"] == [
        {"id": reply.pk, "shortcut": "late", "title": "Ferry late", "text": reply.body}
    ]


def test_feedback_and_quality(api, workspace, owner, conversation, kb):
    path = f"/conversations/{conversation.pk}/suggestions/feedback"
    for verdict in ("used", "edited", "wrong", "used"):
        response = api.post(path, {"kind": "article", "id": kb["pets"].pk, "verdict": verdict})
        assert response.status_code == 201, response.content
    assert response.json()["verdict"] == "used"
    reply = canned.create_canned_reply(owner, shortcut="x", title="X", body="x")
    assert api.post(path, {"kind": "canned", "id": reply.pk, "verdict": "wrong"}).status_code == 201
    quality = api.get("/knowledge/suggestion-quality").json()
    assert quality["days"] == 30
    assert quality["article"] == {"used": 2, "edited": 1, "wrong": 1}
    assert quality["canned"] == {"used": 0, "edited": 0, "wrong": 1}
    # Older than 30 days: not counted.
    old = SuggestionFeedback.objects.get(kind="canned")
    old.created_at -= dt.timedelta(days=31)
    old.save(update_fields=["created_at"])
    assert api.get("/knowledge/suggestion-quality").json()["canned"]["wrong"] == 0


def test_another_workspaces_ids_are_404_and_bad_bodies_400(api, conversation, kb):
    other = factories.workspace("other")
    theirs = publish(other, {"en": ("Theirs", "Their text about dogs.")}, False)
    their_owner = factories.owner_of(other)
    their_reply = canned.create_canned_reply(their_owner, shortcut="t", title="T", body="t")
    path = f"/conversations/{conversation.pk}/suggestions/feedback"
    assert_error(api.post(path, {"kind": "article", "id": theirs.pk, "verdict": "used"}), 404)
    assert_error(api.post(path, {"kind": "canned", "id": their_reply.pk, "verdict": "used"}), 404)
    their_conversation = Conversation.objects.get(
        pk=factories.inbound(factories.api_channel(other), "dogs?").conversation_id
    )
    assert_error(api.get(f"/conversations/{their_conversation.pk}/suggestions"), 404)
    response = api.post(path, {"kind": "article", "id": kb["pets"].pk, "verdict": "great"})
    assert response.status_code in (400, 422)
    assert not SuggestionFeedback.objects.exists()
    assert factories.ApiClient(their_owner).get("/knowledge/suggestion-quality").json()[
        "article"
    ] == {"used": 0, "edited": 0, "wrong": 0}
