"""The flow bot's faq step asks the knowledge base first (loket.knowledge.bot): a confident
match is answered with the article's passage and title; a question the knowledge base does not
answer falls to the step's own list, then to its no-answer branch. Internal articles never."""

from __future__ import annotations

import pytest

from loket.bots import services
from tests import factories
from tests.bots.test_engine import bot_lines, says
from tests.knowledge.test_retrieval import ARTICLES, publish

FLOW = {
    "start": "faq",
    "steps": {
        "faq": {
            "type": "faq",
            "text": "Ask me anything.",
            "next": None,
            "miss": "sorry",
            "items": [
                {
                    "question": "Which island is the largest?",
                    "keywords": ["largest", "grootste"],
                    "answer": "Texel is the largest.",
                },
            ],
        },
        "sorry": {"type": "message", "text": "I do not know that one."},
    },
}


@pytest.fixture
def shop(transactional_db, workspace):
    for texts, internal in ARTICLES.values():
        publish(workspace, texts, internal)
    flow = services.create_flow(workspace, name="Helper", draft=FLOW)
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    return factories.api_channel(workspace, name="Shop")


def test_a_confident_match_is_answered_from_the_article(shop):
    conversation = says(shop, "Hello")
    says(shop, "Is it free to bring my dog on the ferry?")
    answer = bot_lines(conversation)[-1]
    assert answer.startswith("Dogs and cats travel free on all our ferries.")
    assert answer.endswith("Travelling with pets")


def test_the_steps_own_list_then_its_no_answer_branch(shop):
    first = says(shop, "Hello", contact_id="a")
    says(shop, "Which island is the largest one?", contact_id="a")
    assert bot_lines(first)[-1] == "Texel is the largest."
    second = says(shop, "Hello", contact_id="b")
    says(shop, "What will the weather be like tomorrow?", contact_id="b")
    assert bot_lines(second)[-1] == "I do not know that one."
    third = says(shop, "Hello", contact_id="c")
    says(shop, "can I give the customer a goodwill voucher for the delay?", contact_id="c")
    assert "voucher" not in bot_lines(third)[-1].lower()  # internal: never to a customer
