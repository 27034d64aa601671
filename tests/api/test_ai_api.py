"""The optional language model over the API, against a real local OpenAI-compatible server:
POST /conversations/{id}/ai/draft and /ai/summary, POST /ai/translate; 409 with a code when
there is no model, the feature is off or a cap is reached, 502 when the provider fails; the
summary works without a model (extractive). Other workspaces' ids: the walk in
test_cross_workspace.py covers the paths, the test below the body's conversation_id."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from loket.inbox.models import Conversation
from loket.knowledge.models import LlmCall
from tests import factories
from tests.api.conftest import assert_error
from tests.knowledge import test_llm
from tests.knowledge.test_llm import FakeModel, make_provider

pytestmark = pytest.mark.django_db

model_server = test_llm.model_server  # the local OpenAI-compatible server


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def conversation(api_channel) -> Conversation:
    result = factories.inbound(api_channel, "Can I bring my dog on the ferry?")
    return Conversation.objects.get(pk=result.conversation_id)


def test_without_a_model_draft_is_409_and_the_summary_extractive(api, conversation):
    response = api.post(f"/conversations/{conversation.pk}/ai/draft", {})
    error = assert_error(response, 409, "llm_not_configured")
    assert "No language model" in error["message"]
    response = api.post(f"/conversations/{conversation.pk}/ai/summary", {})
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "extractive" and body["call_id"] is None
    assert "Can I bring my dog on the ferry?" in body["text"]
    assert_error(api.post("/ai/translate", {"text": "Hi", "language": "nl"}), 409)


def test_draft_with_sources_and_citations(api, conversation, workspace, model_server):
    from tests.knowledge.test_retrieval import ARTICLES, publish

    pets = publish(workspace, *ARTICLES["pets"])
    make_provider(workspace, model_server)
    response = api.post(f"/conversations/{conversation.pk}/ai/draft", {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == FakeModel.reply
    first = body["sources"][0]
    assert first["article_id"] == pets.pk and first["number"] == 1 and first["cited"]
    assert LlmCall.objects.get(pk=body["call_id"]).purpose == "draft"


def test_summary_by_the_model(api, conversation, workspace, model_server):
    make_provider(workspace, model_server)
    FakeModel.reply = "- wants to bring a dog"
    body = api.post(f"/conversations/{conversation.pk}/ai/summary", {}).json()
    assert body == {"text": "- wants to bring a dog", "method": "llm", "call_id": body["call_id"]}
    assert body["call_id"] is not None


def test_translate_and_its_refusals(api, conversation, workspace, model_server):
    provider = make_provider(workspace, model_server)
    FakeModel.reply = "Hallo!"
    response = api.post(
        "/ai/translate", {"text": "Hello!", "language": "nl", "conversation_id": conversation.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == "Hallo!" and body["language"] == "nl"
    assert LlmCall.objects.get(pk=body["call_id"]).conversation_id == conversation.pk

    assert_error(api.post("/ai/translate", {"text": "Hi", "language": "no way"}), 400, "invalid")

    FakeModel.mode = "http500"
    error = assert_error(
        api.post("/ai/translate", {"text": "Hi", "language": "nl"}), 502, "llm_provider_error"
    )
    assert "the GPU is on fire" in error["message"]

    provider.max_tokens_per_day = 1
    provider.save()
    seen = len(FakeModel.seen)
    assert_error(api.post("/ai/translate", {"text": "Hi", "language": "nl"}), 409, "llm_capped")
    assert len(FakeModel.seen) == seen

    provider.features = ["draft"]
    provider.save()
    assert_error(
        api.post("/ai/translate", {"text": "Hi", "language": "nl"}), 409, "llm_feature_off"
    )


def test_other_workspaces_conversations(api, conversation, workspace, model_server):
    make_provider(workspace, model_server)
    other = factories.workspace("other")
    theirs = factories.inbound(factories.api_channel(other), "x").conversation_id
    assert_error(api.post(f"/conversations/{theirs}/ai/draft", {}), 404, "not_found")
    assert_error(api.post(f"/conversations/{theirs}/ai/summary", {}), 404, "not_found")
    response = api.post(
        "/ai/translate", {"text": "Hi", "language": "nl", "conversation_id": theirs}
    )
    assert_error(response, 400, "invalid")
    assert FakeModel.seen == [] and not LlmCall.objects.exists()
