"""The composer's suggestions (loket.knowledge.suggestions), with the real offline embedding
model: the right article for an English and a Dutch customer message, internal articles for
agents (marked), canned replies ranked by the words they share with the message, the cache per
customer message, and the feedback rules (kept share, edited, quality counts)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.automation import canned
from loket.inbox.models import Conversation
from loket.knowledge import suggestions
from loket.knowledge.models import HelpCenter, SuggestionFeedback
from tests import factories
from tests.knowledge.test_retrieval import ARTICLES, publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # SQLite reuses ids between tests: keys of a past test must not answer
    yield
    cache.clear()


@pytest.fixture
def kb(workspace):
    return {key: publish(workspace, texts, internal) for key, (texts, internal) in ARTICLES.items()}


def conversation_for(channel, text: str, contact: str = "c-1") -> Conversation:
    result = factories.inbound(channel, text, contact_id=contact)
    return Conversation.objects.get(pk=result.conversation_id)


def test_the_right_article_for_an_english_and_a_dutch_message(workspace, owner, api_channel, kb):
    HelpCenter.objects.create(workspace=workspace, enabled=True, locales=["en", "nl"])
    english = conversation_for(api_channel, "Hi! Can I bring my dog on the ferry tomorrow?", "a")
    found = suggestions.for_conversation(english, owner)
    top = found.articles[0]
    assert top.article_id == kb["pets"].pk and top.locale == "en"
    assert "Dogs and cats travel free" in top.text
    assert top.url == "http://127.0.0.1:8000/help/acme/en/a/travelling-with-pets/"
    assert 0 < top.confidence <= 1 and len(found.articles) <= 3

    dutch = conversation_for(api_channel, "Ik wil mijn geld terug, ik heb de reis geannuleerd", "b")
    dutch.language = "nl"
    dutch.save(update_fields=["language"])
    top = suggestions.for_conversation(dutch, owner).articles[0]
    assert (top.article_id, top.locale) == (kb["refund"].pk, "nl")
    assert top.title == "Geld terug bij annulering"


def test_internal_articles_are_suggested_to_agents_and_marked(workspace, agent, api_channel, kb):
    conversation = conversation_for(api_channel, "The boat was two hours late, I want a voucher")
    found = suggestions.for_conversation(conversation, agent)
    voucher = next(a for a in found.articles if a.article_id == kb["voucher"].pk)
    assert voucher.internal is True and voucher.url is None  # never a public link
    assert all(not a.internal for a in found.articles if a.article_id != kb["voucher"].pk)


def test_no_customer_message_and_unrelated_messages_suggest_nothing(
    workspace, owner, api_channel, kb
):
    conversation = conversation_for(api_channel, "Can I bring my bike?")
    other = factories.workspace("other")
    assert suggestions.for_conversation(conversation, owner).articles  # found in its own
    with pytest.raises(ValueError):
        suggestions.for_conversation(conversation, factories.owner_of(other))
    empty = suggestions.for_conversation(
        conversation_for(factories.api_channel(other), "Can I bring my bike?"),
        factories.owner_of(other),
    )
    assert (empty.articles, empty.canned) == ([], [])  # another workspace's articles: never


def test_canned_replies_ranked_by_the_words_they_share(workspace, owner, agent, api_channel):
    refund = canned.create_canned_reply(
        owner,
        shortcut="refund",
        title="Refund on its way",
        body="Hi {{contact.first_name|there}}, your refund is on its way: it takes 10 days.",
        shared=True,
    )
    canned.create_canned_reply(
        owner, shortcut="hello", title="Greeting", body="Hello, how can I help?", shared=True
    )
    delivery = canned.create_canned_reply(
        agent,
        shortcut="late",
        title="Late delivery",
        body="Sorry your parcel is late; the delivery company has been told.",
    )
    canned.create_canned_reply(  # another member's own: never suggested to the agent
        owner, shortcut="late2", title="Late delivery again", body="The delivery is late."
    )
    conversation = conversation_for(
        api_channel, "My parcel delivery is late and I'd like a refund", contact="Jan Jansen"
    )
    found = suggestions.for_conversation(conversation, agent).canned
    assert [c.id for c in found] == [delivery.pk, refund.pk]  # "hello" shares nothing
    assert found[1].text.startswith("Hi Customer, your refund")  # filled in, like the "/" menu
    assert suggestions.rank_canned(agent, "the", None) == []


def test_articles_are_cached_per_customer_message(workspace, owner, api_channel, kb):
    conversation = conversation_for(api_channel, "Can I take my dog along on the ferry?")
    first = suggestions.for_conversation(conversation, owner)
    with CaptureQueriesContext(connection) as queries:
        again = suggestions.for_conversation(conversation, owner)
    assert again.articles == first.articles
    assert not [q for q in queries.captured_queries if "knowledge_passage" in q["sql"]]
    # A new customer message is a new question.
    factories.inbound(api_channel, "And how much is a bicycle ticket?")
    newer = suggestions.for_conversation(conversation, owner)
    assert newer.message_id != first.message_id
    assert newer.articles[0].article_id == kb["bikes"].pk


def test_kept_share_and_the_edited_rule():
    passage = "Dogs and cats travel free on all our ferries. Keep your dog on a lead."
    assert suggestions.kept_share(passage, passage) == 1.0
    assert suggestions.kept_share(passage, f"Hi Anna,\n\n{passage}\n\nKind regards, Bo") == 1.0
    half = "Dogs and cats travel free. Please bring a basket for cats, thanks!"
    assert suggestions.kept_share(passage, half) < suggestions.EDITED_BELOW
    small_fix = passage.replace("our ferries", "the ferries")
    assert suggestions.kept_share(passage, small_fix) >= suggestions.EDITED_BELOW


def test_feedback_is_scoped_and_counted(workspace, owner, api_channel, kb):
    conversation = conversation_for(api_channel, "Can I take my dog?")
    used = suggestions.record(
        conversation, owner, kind="article", item_id=kb["pets"].pk, verdict="used", text="x"
    )
    suggestions.record(conversation, owner, kind="article", item_id=kb["bikes"].pk, verdict="wrong")
    other = factories.workspace("other")
    theirs = publish(other, {"en": ("Their article", "Their text about dogs.")}, False)
    with pytest.raises(suggestions.NotFound):
        suggestions.record(conversation, owner, kind="article", item_id=theirs.pk, verdict="used")
    with pytest.raises(ValueError):
        suggestions.record(conversation, owner, kind="macro", item_id=1, verdict="used")
    assert suggestions.pending(conversation, owner, []) == []
    assert suggestions.pending(conversation, owner, [str(used.pk), "junk"]) == [used]
    counts = suggestions.quality(workspace.pk)
    assert counts["article"] == {"used": 1, "edited": 0, "wrong": 1}
    assert counts["canned"] == {"used": 0, "edited": 0, "wrong": 0}
    assert suggestions.quality(other.pk)["article"]["used"] == 0
    assert SuggestionFeedback.objects.filter(workspace=workspace).count() == 2
