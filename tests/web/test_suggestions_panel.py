"""The composer's "Suggestions" panel: the pane renders only a lazy slot (no query: its pinned
query count holds), the panel shows the sources, Insert and "Not helpful" are recorded, and a
reply sent with an inserted suggestion settles it as used or edited (with no query added to the
send path when nothing was inserted)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from loket.automation import canned
from loket.inbox.models import Conversation
from loket.knowledge.models import SuggestionFeedback
from tests import factories
from tests.knowledge.test_retrieval import ARTICLES, publish

pytestmark = pytest.mark.django_db

PETS_TEXT = ARTICLES["pets"][0]["en"][1]
PANE_QUERIES = 16  # the conversation pane, measured before the panel existed


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def agent_client(client, workspace, owner):
    client.force_login(owner.user)
    return client


@pytest.fixture
def pets(workspace):
    texts, internal = ARTICLES["pets"]
    return publish(workspace, texts, internal)


@pytest.fixture
def conversation(api_channel) -> Conversation:
    result = factories.inbound(api_channel, "Can I bring my dog on the ferry?")
    return Conversation.objects.get(pk=result.conversation_id)


def test_the_pane_renders_a_lazy_slot_and_no_more_queries(
    agent_client, conversation, pets, owner, django_assert_num_queries
):
    canned.create_canned_reply(owner, shortcut="dogs", title="Dogs", body="Dogs travel free")
    url = f"/w/acme/inbox/{conversation.number}/pane/"
    agent_client.get(url)  # per-process memories warmed up, as in the pinned pane test
    with django_assert_num_queries(PANE_QUERIES) as pane:
        page = agent_client.get(url)
    sql = " ".join(q["sql"] for q in pane.captured_queries)
    # No suggestion work (retrieval's passages, canned replies): the insight comes joined into
    # the conversation's own query.
    assert "knowledge_passage" not in sql and "automation_cannedreply" not in sql
    assert "knowledge_suggestionfeedback" not in sql
    html = page.content.decode()
    assert 'id="suggestions"' in html
    assert f'hx-get="/w/acme/inbox/{conversation.number}/suggestions/"' in html
    # Loaded once the pane is there, again when a customer message arrives in it.
    assert 'hx-trigger="load, loket:event[' in html
    assert f"detail.conversation_id=={conversation.pk}" in html
    assert "detail.direction=='in'" in html
    assert "Dogs and cats travel free" not in html  # not computed with the pane


def test_the_panel_shows_sources_and_refreshes_on_customer_messages(
    agent_client, conversation, pets, owner
):
    canned.create_canned_reply(
        owner, shortcut="dogs", title="Dogs on board", body="Your dog is welcome on the ferry."
    )
    page = agent_client.get(f"/w/acme/inbox/{conversation.number}/suggestions/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Travelling with pets" in html and "Article" in html
    assert f'data-id="{pets.pk}"' in html and "/dogs" in html and "Canned reply" in html
    assert "Insert" in html and "Not helpful" in html
    other = factories.workspace("other")
    theirs = factories.inbound(factories.api_channel(other), "x").conversation_id
    number = Conversation.objects.get(pk=theirs).number
    assert agent_client.get(f"/w/other/inbox/{number}/suggestions/").status_code == 404


def test_a_conversation_without_suggestions_leaves_the_panel_empty(agent_client, conversation):
    page = agent_client.get(f"/w/acme/inbox/{conversation.number}/suggestions/")
    assert page.status_code == 200 and page.content.decode().strip() == ""


def _insert(agent_client, conversation, kind, item_id, text, verdict="used"):
    return agent_client.post(
        f"/w/acme/inbox/{conversation.number}/suggestions/feedback/",
        {"kind": kind, "id": str(item_id), "verdict": verdict, "text": text},
    )


def test_insert_then_send_as_suggested_stays_used(agent_client, conversation, pets, owner):
    response = _insert(agent_client, conversation, "article", pets.pk, PETS_TEXT)
    assert response.status_code == 200
    feedback = SuggestionFeedback.objects.get(pk=response.json()["id"])
    assert (feedback.kind, feedback.verdict, feedback.member_id) == ("article", "used", owner.pk)
    sent = agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": f"Hi!\n\n{PETS_TEXT}\n\nBo", "seen": str(2**62), "suggestion": feedback.pk},
    )
    assert sent.status_code == 200
    feedback.refresh_from_db()
    assert feedback.verdict == "used" and feedback.kept == 1.0
    assert feedback.message.text.startswith("Hi!")


def test_insert_then_rewrite_is_edited(agent_client, conversation, pets):
    feedback_id = _insert(agent_client, conversation, "article", pets.pk, PETS_TEXT).json()["id"]
    agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {
            "text": "Yes, dogs are welcome. Bring a lead.",
            "seen": str(2**62),
            "suggestion": feedback_id,
        },
    )
    feedback = SuggestionFeedback.objects.get(pk=feedback_id)
    assert feedback.verdict == "edited" and feedback.kept < 0.8
    # Settled once: posting it again with another reply changes nothing.
    agent_client.post(
        f"/w/acme/inbox/{conversation.number}/send/",
        {"text": PETS_TEXT, "seen": str(2**62), "suggestion": feedback_id},
    )
    assert SuggestionFeedback.objects.get(pk=feedback_id).verdict == "edited"


def test_not_helpful_and_refusals(agent_client, conversation, pets, workspace):
    assert _insert(agent_client, conversation, "article", pets.pk, "", "wrong").status_code == 200
    assert SuggestionFeedback.objects.get().verdict == "wrong"
    assert _insert(agent_client, conversation, "article", pets.pk, "", "edited").status_code == 400
    assert _insert(agent_client, conversation, "macro", pets.pk, "").status_code == 400
    other = factories.workspace("other")
    theirs = publish(other, {"en": ("Theirs", "Their dogs text.")}, False)
    assert _insert(agent_client, conversation, "article", theirs.pk, "").status_code == 404
    colleague = factories.agent(workspace)
    private = canned.create_canned_reply(colleague, shortcut="mine", title="Mine", body="Mine")
    assert _insert(agent_client, conversation, "canned", private.pk, "").status_code == 404
    assert SuggestionFeedback.objects.count() == 1


def test_sending_without_a_suggestion_adds_no_query(
    agent_client, conversation, django_assert_max_num_queries
):
    url = f"/w/acme/inbox/{conversation.number}/send/"
    agent_client.post(url, {"text": "warm up", "seen": str(2**62)})
    with django_assert_max_num_queries(100) as plain:
        agent_client.post(url, {"text": "first", "seen": str(2**62)})
    assert not [q for q in plain.captured_queries if "suggestionfeedback" in q["sql"]]
