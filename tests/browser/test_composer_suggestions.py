"""The composer's suggestions in a real browser: a customer's question arrives in the open
conversation, the Suggestions panel shows the knowledge-base article that answers it (live, no
reload), Insert puts its passage into the reply box, and the reply sent with it is recorded as
the suggestion used."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from loket.inbox.models import Conversation
from loket.knowledge.models import SuggestionFeedback
from tests.browser.test_inbox_live import LIVE, open_conversation
from tests.knowledge.test_retrieval import ARTICLES, publish

PETS_TEXT = ARTICLES["pets"][0]["en"][1]


def test_a_customer_question_brings_the_article_and_insert_fills_the_composer(
    agent_app, browser_pages, screenshot
):
    texts, internal = ARTICLES["pets"]
    article = publish(agent_app.workspace, texts, internal)
    [anna] = browser_pages("agent-a", goto="/w/acme/")
    agent_app.ingest("Good morning!")
    expect(anna.locator("#conv-list")).to_contain_text("Noor de Vries", timeout=LIVE)
    open_conversation(anna, "Noor de Vries")
    panel = anna.locator("#suggestions")

    message = agent_app.ingest("Hi, can I take my dog with me on the ferry?")
    expect(panel).to_contain_text("Travelling with pets", timeout=LIVE)
    expect(panel).to_contain_text("Article")
    panel.get_by_role("button", name="Insert").first.click()
    expect(anna.locator("#composer-text")).to_have_value(PETS_TEXT)
    screenshot(anna, "composer-suggestions")

    anna.wait_for_function(
        "() => document.querySelector('#composer')._x_dataStack[0].suggested.length === 1"
    )
    anna.get_by_role("button", name="Send").click()
    expect(anna.locator("#timeline")).to_contain_text("Assistance dogs are always welcome")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    deadline = time.monotonic() + 5
    feedback = SuggestionFeedback.objects.get(conversation=conversation)
    while feedback.message_id is None and time.monotonic() < deadline:
        time.sleep(0.1)
        feedback.refresh_from_db()
    assert (feedback.kind, feedback.article_id, feedback.verdict) == ("article", article.pk, "used")
    assert feedback.member_id == agent_app.person("agent-a").membership.pk
    assert feedback.message.text == PETS_TEXT
