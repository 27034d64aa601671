"""Resolved conversations' agent answers as a retrieval source (loket.knowledge.conversations),
a workspace's opt-in: off, nothing is indexed; on, a resolved conversation's answer is suggested
in the composer for a similar question — and never found by plain or internal retrieval, the
help center, the bot or another workspace; e-mail addresses and phone numbers are stripped;
reopening drops it, and switching the setting off drops them all. With the real embedding
model (one small workspace)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from loket.inbox.models import AuthorType, Conversation, ConversationStatus, Message, MessageKind
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.outbound import reply
from loket.knowledge import bot, conversations, public, retrieval, suggestions
from loket.knowledge.models import HelpCenter, Passage, SuggestionFeedback
from loket.tenancy.models import Workspace
from tests import factories
from tests.workspace_settings.conftest import signed_in, url

pytestmark = pytest.mark.django_db

QUESTION = (
    "Can I pay for my ferry ticket with PayPal? Mail me at jan.jansen@example.com or 06-12345678"
)
ANSWER = (
    "Yes, PayPal works at the checkout of the app and the website. If the payment fails, "
    "call our desk on +31 20 123 4567 and we book it by hand. Your booking of 2026-12-02 is kept."
)
SIMILAR = "Is it possible to pay with PayPal for the ferry?"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def resolved(channel, agent, question=QUESTION, answer=ANSWER, contact="c-1") -> Conversation:
    result = factories.inbound(channel, question, contact_id=contact)
    conversation = Conversation.objects.get(pk=result.conversation_id)
    reply(conversation, author=agent, text="Internal: customer seems upset", kind=MessageKind.NOTE)
    reply(conversation, author=None, author_type=AuthorType.BOT, text="A bot says hello")
    reply(conversation, author=agent, text=answer)
    update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
    conversation.refresh_from_db()
    return conversation


def asking(channel, text=SIMILAR, contact="c-2") -> Conversation:
    return Conversation.objects.get(
        pk=factories.inbound(channel, text, contact_id=contact).conversation_id
    )


def learn(workspace, enabled=True) -> None:
    conversations.set_learning(workspace, enabled, actor=None)


def learned(workspace) -> list[Passage]:
    return list(Passage.objects.filter(workspace=workspace, conversation__isnull=False))


def test_scrub_strips_email_addresses_and_phone_numbers_and_keeps_dates_and_amounts():
    text = "Mail a.b+c@mail.example.nl, call +31 (0)6 1234 5678 or 020-1234567; €25 on 2026-12-02."
    assert conversations.scrub(text) == "Mail [email], call [phone] or [phone]; €25 on 2026-12-02."


def test_off_by_default_nothing_is_indexed(workspace, agent, api_channel):
    assert Workspace.objects.get(pk=workspace.pk).learn_from_conversations is False
    resolved(api_channel, agent)
    assert conversations.sweep() == (0, 0)
    assert learned(workspace) == []


def test_on_an_answer_is_suggested_to_agents_and_nowhere_else(workspace, agent, api_channel):
    HelpCenter.objects.create(workspace=workspace, enabled=True, locales=["en"])
    learn(workspace)
    old = resolved(api_channel, agent)
    other = factories.workspace("other")  # opted in too, its own conversation
    learn(other)
    other_agent = factories.agent(other)
    resolved(factories.api_channel(other), other_agent, answer="Other workspace answer: no PayPal")
    made, _dropped = conversations.sweep()
    assert made == 2 and conversations.sweep() == (0, 0)  # once per resolution

    (passage,) = learned(workspace)
    assert passage.internal and passage.article_id is None and passage.source_at == old.resolved_at
    assert passage.text.startswith(
        "Q: Can I pay for my ferry ticket with PayPal? Mail me at [email]"
    )
    assert "\nA: Yes, PayPal works" in passage.text
    for secret in ("jan.jansen", "example.com", "12345678", "123 4567", "upset", "bot says"):
        assert secret not in passage.text  # personal data, the note and the bot are not in it
    assert "2026-12-02" in passage.text

    new = asking(api_channel)
    found = suggestions.for_conversation(new, agent)
    hit = next(a for a in found.articles if a.conversation_id == old.pk)
    assert hit.title == f"Conversation #{old.number}" and hit.internal and hit.url is None
    assert hit.article_id is None and "PayPal works" in hit.text and "[phone]" in hit.text
    assert not any("Other workspace" in a.text for a in found.articles)

    # Retrieval finds it only when asked for both; then it would be a confident answer...
    both = retrieval.search(
        workspace.pk, SIMILAR, include_internal=True, include_conversations=True
    )
    assert both[0].conversation_id == old.pk
    assert both[0].confidence >= retrieval.ANSWER_THRESHOLD
    # ...yet plain and internal retrieval, the help center, the API's flag alone and the bot: never.
    for hits in (
        retrieval.search(workspace.pk, SIMILAR),
        retrieval.search(workspace.pk, SIMILAR, include_internal=True),
        retrieval.search(workspace.pk, SIMILAR, include_conversations=True),
    ):
        assert all(h.conversation_id is None for h in hits)
    assert public.search(workspace.pk, SIMILAR, "en", ["en"]) == []
    assert retrieval.answer(workspace.pk, SIMILAR).text is None
    assert bot.answer(new, SIMILAR, ["en"]) is None


def test_reopening_drops_the_answer_and_resolving_again_makes_it_anew(
    workspace, agent, api_channel
):
    learn(workspace)
    old = resolved(api_channel, agent)
    conversations.sweep()
    new = asking(api_channel)
    assert any(
        a.conversation_id == old.pk for a in suggestions.for_conversation(new, agent).articles
    )

    update_conversation(old, actor=agent, status=ConversationStatus.OPEN)
    cache.clear()
    # Gone at once (retrieval checks the status), and from the table with the next sweep.
    assert not any(
        a.conversation_id == old.pk for a in suggestions.for_conversation(new, agent).articles
    )
    assert conversations.sweep() == (0, 1) and learned(workspace) == []

    update_conversation(old, actor=agent, status=ConversationStatus.RESOLVED)
    assert conversations.sweep() == (1, 0)
    assert len(learned(workspace)) == 1
    Conversation.objects.filter(pk=old.pk).delete()  # a deleted conversation's: by cascade
    assert learned(workspace) == []


def test_switching_off_on_the_settings_page_removes_them_all(workspace, owner, agent, api_channel):
    page = url("knowledge", workspace)
    assert signed_in(agent).post(page, {"learn_from_conversations": "on"}).status_code == 403
    client = signed_in(owner)
    form = client.get(page).content.decode().split('id="kb-learning-form"')[1][:400]
    assert 'name="learn_from_conversations"' in form and "checked" not in form
    response = client.post(page, {"learn_from_conversations": "on"})
    assert response.status_code == 302
    assert Workspace.objects.get(pk=workspace.pk).learn_from_conversations is True
    form = client.get(page).content.decode().split('id="kb-learning-form"')[1][:400]
    assert "checked" in form

    resolved(api_channel, agent)
    resolved(api_channel, agent, question="Do you sell day tickets for bikes?", contact="c-9")
    conversations.sweep()
    assert len(learned(workspace)) == 2

    client.post(page, {})  # the box unticked
    assert Workspace.objects.get(pk=workspace.pk).learn_from_conversations is False
    assert learned(workspace) == []
    assert conversations.sweep() == (0, 0)


def test_a_conversation_without_an_answered_question_is_looked_at_once(
    workspace, agent, api_channel
):
    learn(workspace)
    result = factories.inbound(api_channel, "Hello?", contact_id="c-5")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    reply(conversation, author=agent, text="Internal only", kind=MessageKind.NOTE)
    update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
    assert conversations.due() == []  # no agent reply: nothing to learn, not even looked at

    reply(conversation, author=agent, text="Hi! How can we help?")
    update_conversation(conversation, actor=agent, status=ConversationStatus.OPEN)
    update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
    conversations.catch_up()
    (row,) = learned(workspace)
    assert row.text.startswith("Q: Hello?\nA: Hi!") and row.embedding is not None
    assert conversations.due() == [] and conversations.catch_up() == 0


def test_an_agent_opening_without_a_reply_to_the_customer_is_marked_and_not_looked_at_again(
    workspace, agent, api_channel
):
    learn(workspace)
    result = factories.inbound(api_channel, "Thanks, got it", contact_id="c-6")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    opening = reply(conversation, author=agent, text="Your ferry of tomorrow leaves an hour later.")
    first = Message.objects.get(pk=result.message_id)
    Message.objects.filter(pk=opening.pk).update(
        created_at=first.created_at - dt.timedelta(minutes=5)
    )
    update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
    assert [c.pk for c in conversations.due()] == [conversation.pk]
    assert conversations.sweep() == (0, 0)
    (row,) = learned(workspace)  # a marker: no text, no embedding, never found
    assert (row.text, row.embedding) == ("", None)
    assert conversations.due() == []
    assert (
        retrieval.search(workspace.pk, "ferry", include_internal=True, include_conversations=True)
        == []
    )


def test_feedback_on_a_conversation_answer_is_kept_and_counted(workspace, agent, api_channel):
    learn(workspace)
    old = resolved(api_channel, agent)
    conversations.sweep()
    new = asking(api_channel)
    client = signed_in(agent)
    panel = client.get(f"/w/{workspace.slug}/inbox/{new.number}/suggestions/")
    assert f'data-kind="conversation" data-id="{old.pk}"' in panel.content.decode()
    assert "data-wrong" in panel.content.decode()  # "Not helpful" is offered for it too
    feedback = f"/w/{workspace.slug}/inbox/{new.number}/suggestions/feedback/"
    used = client.post(
        feedback, {"kind": "conversation", "id": str(old.pk), "verdict": "used", "text": ANSWER}
    )
    assert used.status_code == 200, used.content
    client.post(
        f"/w/{workspace.slug}/inbox/{new.number}/send/",
        {"text": "Sure, it works.", "seen": str(2**62), "suggestion": used.json()["id"]},
    )
    row = SuggestionFeedback.objects.get(pk=used.json()["id"])
    assert (row.kind, row.verdict, row.source_conversation_id) == ("conversation", "edited", old.pk)
    assert (
        client.post(
            feedback, {"kind": "conversation", "id": str(old.pk), "verdict": "wrong"}
        ).json()["verdict"]
        == "wrong"
    )
    # Not the conversation itself, and never another workspace's.
    other = factories.workspace("other")
    theirs = asking(factories.api_channel(other), contact="c-9")
    for bad in (new.pk, theirs.pk):
        response = client.post(
            feedback, {"kind": "conversation", "id": str(bad), "verdict": "used"}
        )
        assert response.status_code == 404
    counts = suggestions.quality(workspace.pk)["conversation"]
    assert counts == {"used": 0, "edited": 1, "wrong": 1}
    api = factories.ApiClient(agent)
    assert api.get("/knowledge/suggestion-quality").json()["conversation"]["wrong"] == 1
    created = api.post(
        f"/conversations/{new.pk}/suggestions/feedback",
        {"kind": "conversation", "id": old.pk, "verdict": "used"},
    )
    assert created.status_code == 201 and created.json()["kind"] == "conversation"
    settings_page = signed_in(factories.owner_of(workspace)).get(url("knowledge", workspace))
    assert "Resolved conversation" in settings_page.content.decode()
    # The judgement outlives the source.
    old.delete()
    assert suggestions.quality(workspace.pk)["conversation"]["wrong"] == 1
