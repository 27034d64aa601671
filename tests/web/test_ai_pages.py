"""The composer's AI tools and Settings → AI, against a real local OpenAI-compatible server:
the pane renders only a lazy slot (no query added), the buttons follow the provider's features
("Summarise" always there, offline without a model), a draft fills the composer with its
sources, Translate replaces the reply; the settings page is for admins and never shows the API
key again."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from loket.inbox.models import Conversation
from loket.knowledge.models import LlmCall, LlmProvider
from tests import factories
from tests.knowledge import test_llm
from tests.knowledge.test_llm import FakeModel, make_provider
from tests.web.test_suggestions_panel import PANE_QUERIES

pytestmark = pytest.mark.django_db

model_server = test_llm.model_server  # the local OpenAI-compatible server


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner.user)
    return client


@pytest.fixture
def conversation(api_channel) -> Conversation:
    result = factories.inbound(api_channel, "Can I bring my dog on the ferry?")
    found = Conversation.objects.get(pk=result.conversation_id)
    found.language = "nl"
    found.save(update_fields=["language"])
    return found


def _tools(client, conversation) -> str:
    page = client.get(f"/w/acme/inbox/{conversation.number}/ai/")
    assert page.status_code == 200
    return page.content.decode()


def test_the_pane_has_a_lazy_slot_and_no_more_queries(
    agent_client, conversation, workspace, model_server, django_assert_num_queries
):
    make_provider(workspace, model_server)
    url = f"/w/acme/inbox/{conversation.number}/pane/"
    agent_client.get(url)
    with django_assert_num_queries(PANE_QUERIES) as pane:
        page = agent_client.get(url)
    assert "knowledge_llm" not in " ".join(q["sql"] for q in pane.captured_queries)
    html = page.content.decode()
    assert f'hx-get="/w/acme/inbox/{conversation.number}/ai/"' in html
    assert "Draft with AI" not in html  # the buttons come with the slot's own request


def test_without_a_provider_only_summarise_shows_and_it_is_extractive(agent_client, conversation):
    html = _tools(agent_client, conversation)
    assert "Summarise" in html
    assert "Draft with AI" not in html and "Translate into" not in html
    summary = agent_client.post(f"/w/acme/inbox/{conversation.number}/ai/summary/")
    text = summary.content.decode()
    assert summary.status_code == 200 and 'data-method="extractive"' in text
    assert "First customer message" in text and "Can I bring my dog on the ferry?" in text
    assert not LlmCall.objects.exists()
    # Drafting is refused with a reason, nothing sent.
    draft = agent_client.post(f"/w/acme/inbox/{conversation.number}/ai/draft/")
    assert 'data-ai-error="not_configured"' in draft.content.decode()


def test_buttons_follow_the_features(agent_client, conversation, workspace, model_server):
    provider = make_provider(workspace, model_server, features=["summary"])
    html = _tools(agent_client, conversation)
    assert "Summarise" in html and "Draft with AI" not in html and "Translate into" not in html
    provider.features = ["draft", "summary", "translate"]
    provider.save()
    html = _tools(agent_client, conversation)
    assert "Draft with AI" in html and "Translate into Dutch" in html
    provider.enabled = False
    provider.save()
    html = _tools(agent_client, conversation)
    assert "Draft with AI" not in html and "Translate into" not in html and "Summarise" in html


def test_translate_shows_only_when_the_languages_differ(
    agent_client, conversation, workspace, model_server
):
    make_provider(workspace, model_server)
    conversation.language = "en"
    conversation.save(update_fields=["language"])
    assert "Translate into" not in _tools(agent_client, conversation)


def test_draft_fills_the_composer_and_shows_its_sources(
    agent_client, conversation, workspace, model_server
):
    from tests.knowledge.test_retrieval import ARTICLES, publish

    pets = publish(workspace, *ARTICLES["pets"])
    make_provider(workspace, model_server)
    FakeModel.reply = "Honden reizen gratis mee [1]."
    page = agent_client.post(f"/w/acme/inbox/{conversation.number}/ai/draft/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-text="Honden reizen gratis mee [1]."' in html
    assert "insert($el.dataset.text)" in html  # put into the reply box (the composer's insert)
    assert f'data-article="{pets.pk}"' in html and "cited" in html
    assert "Reizen met huisdieren" in html or "Travelling with pets" in html
    call = LlmCall.objects.get()
    assert call.purpose == "draft" and call.conversation_id == conversation.pk


def test_translate_replaces_the_reply(agent_client, conversation, workspace, model_server):
    make_provider(workspace, model_server)
    FakeModel.reply = "Je hond is welkom."
    page = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/ai/translate/", {"text": "Your dog is welcome."}
    )
    html = page.content.decode()
    assert (
        'data-text="Je hond is welkom."' in html and 'data-original="Your dog is welcome."' in html
    )
    assert "Translated into Dutch" in html
    assert "Dutch" in FakeModel.seen[0][2]["messages"][0]["content"]


def test_a_provider_error_is_shown_and_the_summary_falls_back(
    agent_client, conversation, workspace, model_server
):
    make_provider(workspace, model_server)
    FakeModel.mode = "http500"
    page = agent_client.post(f"/w/acme/inbox/{conversation.number}/ai/summary/")
    html = page.content.decode()
    assert 'data-method="extractive"' in html and "the GPU is on fire" in html


def test_another_workspaces_conversation_is_404(agent_client):
    other = factories.workspace("other")
    theirs = factories.inbound(factories.api_channel(other), "x").conversation_id
    number = Conversation.objects.get(pk=theirs).number
    assert agent_client.get(f"/w/other/inbox/{number}/ai/").status_code == 404
    assert agent_client.post(f"/w/acme/inbox/{number + 1000}/ai/summary/").status_code == 404


# -- Settings → AI ------------------------------------------------------------------------------
FORM = {
    "enabled": "on",
    "base_url": "",
    "model": "llama3.2",
    "api_key": "sk-very-secret-key",
    "timeout_seconds": "5",
    "max_tokens_per_day": "10000",
    "max_cost_per_month_cents": "100",
    "prompt_price": "15",
    "completion_price": "60",
    "features": ["draft", "summary"],
}


def test_settings_are_for_admins_only(client, workspace, agent):
    client.force_login(agent.user)
    assert client.get("/w/acme/settings/ai/").status_code == 403
    assert client.post("/w/acme/settings/ai/", FORM).status_code == 403
    assert not LlmProvider.objects.exists()


def test_settings_save_test_and_log_never_show_the_key(agent_client, workspace, model_server):
    page = agent_client.get("/w/acme/settings/ai/")
    assert page.status_code == 200 and "Test connection" not in page.content.decode()
    saved = agent_client.post("/w/acme/settings/ai/", {**FORM, "base_url": model_server})
    assert saved.status_code == 302
    provider = LlmProvider.objects.get(workspace=workspace)
    assert provider.api_key == {"key": "sk-very-secret-key"}
    assert provider.features == ["draft", "summary"] and provider.enabled
    html = agent_client.get("/w/acme/settings/ai/").content.decode()
    assert "sk-very-secret-key" not in html and "Test connection" in html
    # Saving again with an empty key keeps it.
    agent_client.post("/w/acme/settings/ai/", {**FORM, "base_url": model_server, "api_key": ""})
    provider.refresh_from_db()
    assert provider.api_key == {"key": "sk-very-secret-key"}

    FakeModel.reply = "OK"
    tested = agent_client.post("/w/acme/settings/ai/test/", follow=True)
    assert "The model answered" in tested.content.decode()
    assert FakeModel.seen[0][1]["Authorization"] == "Bearer sk-very-secret-key"
    call = LlmCall.objects.get()
    html = agent_client.get("/w/acme/settings/ai/").content.decode()
    assert f'id="ai-call-{call.pk}"' in html and "sk-very-secret-key" not in html
    detail = agent_client.get(f"/w/acme/settings/ai/calls/{call.pk}/").content.decode()
    assert "Reply with the single word OK." in detail and "OK" in detail

    other = factories.workspace("other")
    theirs = LlmCall.objects.create(workspace=other, purpose="draft", status="ok")
    assert agent_client.get(f"/w/acme/settings/ai/calls/{theirs.pk}/").status_code == 404


def test_invalid_settings_are_refused(agent_client, workspace):
    page = agent_client.post(
        "/w/acme/settings/ai/", {**FORM, "base_url": "ftp://x", "timeout_seconds": "0"}
    )
    assert page.status_code == 400
    html = page.content.decode()
    assert "http:// or https://" in html and "Timeout (seconds) must be a whole number" in html
    assert "sk-very-secret-key" not in html
    assert not LlmProvider.objects.exists()
