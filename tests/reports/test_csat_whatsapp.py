"""CSAT end to end on WhatsApp, against the local fake Graph server: resolve → the survey goes
out as an interactive message with the five scores (WhatsApp shows more than three options as
a list) and a link for a comment; the customer's tap comes back through the signed webhook as
a list or button reply with id ``csat:4`` → rating 4, and the conversation, which the tap
reopened as any customer message does, is resolved again with its original resolution time.
A typed "4" counts too; a real question next to the answer keeps the conversation open."""

from __future__ import annotations

import pytest
from django.utils import translation

from loket.inbox.models import Conversation, ConversationStatus, Message, SatisfactionRating
from loket.inbox.services.conversations import update_conversation
from loket.reports import csat
from loket.web.inbox.timeline import entry
from tests.connectors.providers import Answer, run_tasks
from tests.connectors.whatsapp import support
from tests.connectors.whatsapp.conftest import channel, graph  # noqa: F401 (fixtures)
from tests.connectors.whatsapp.support import change, message, notification, post

MESSAGES = r"/v21\.0/\d+/messages"


@pytest.fixture
def resolved(channel, owner, graph):  # noqa: F811
    csat.set_setting(channel, {"enabled": True, "delay_minutes": 0})
    assert post(channel, support.sample("text_message")).status_code == 200
    conversation = Conversation.objects.get()
    graph.then("POST", MESSAGES, Answer(200, support.sent_answer(support.wamid())))
    conversation = update_conversation(
        conversation, actor=owner, status=ConversationStatus.RESOLVED
    )
    run_tasks(retries_due=True)
    run_tasks(retries_due=True)  # once more: still one survey
    return conversation


def survey_of(conversation):
    return Message.objects.get(conversation=conversation, data__has_key="csat_survey")


def customer_says(channel, survey, kind, content=None):  # noqa: F811
    if kind == "text":
        sent = message("text", {"body": content})
    else:
        sent = message(
            "interactive", {"type": kind, kind: content}, context={"id": survey.external_id}
        )
    assert post(channel, notification(change([sent]))).status_code == 200
    run_tasks(retries_due=True)


def test_the_survey_goes_out_as_interactive_choices(resolved, graph):  # noqa: F811
    [body] = [r.json() for r in graph.requests_to("POST", MESSAGES)]
    assert body["type"] == "interactive"
    interactive = body["interactive"]
    assert interactive["type"] == "list"  # five options: a list (buttons stop at three)
    rows = interactive["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows] == [f"csat:{n}" for n in range(1, 6)]
    # In the conversation's language (the sample customer writes Dutch).
    resolved.refresh_from_db()
    with translation.override(csat.language_of(resolved)):
        assert rows[3]["title"] == csat.score_items()[3]["title"]
    assert rows[3]["title"].startswith("4 \u2013 ")
    assert "/csat/" in interactive["body"]["text"]  # the link for a comment
    survey = survey_of(resolved)
    assert survey.status == "sent" and survey.author_type == "system"


@pytest.mark.parametrize("kind", ["list_reply", "button_reply"])
def test_a_tapped_score_rates_and_leaves_the_conversation_resolved(
    resolved,
    channel,  # noqa: F811
    kind,
):
    survey = survey_of(resolved)
    customer_says(channel, survey, kind, {"id": "csat:4", "title": "4 \u2013 Good"})
    rating = SatisfactionRating.objects.get(conversation=resolved)
    assert (rating.rating, rating.source) == (4, "whatsapp")
    conversation = Conversation.objects.get(pk=resolved.pk)
    assert conversation.status == ConversationStatus.RESOLVED
    assert conversation.resolved_at == resolved.resolved_at  # its resolution time stays
    lines = Message.objects.filter(conversation=resolved, kind="activity").order_by("pk")
    said = [entry(line).sentence for line in lines]
    assert said[-2:] == [
        "Resolved again: the customer's message answered the satisfaction survey",
        "The customer rated this conversation 4/5",
    ]
    assert Message.objects.filter(data__has_key="csat_survey").count() == 1  # no second survey


def test_a_typed_score_counts_too(resolved, channel):  # noqa: F811
    customer_says(channel, survey_of(resolved), "text", "4")
    assert SatisfactionRating.objects.get(conversation=resolved).rating == 4
    assert Conversation.objects.get(pk=resolved.pk).status == ConversationStatus.RESOLVED


def test_a_question_is_not_an_answer(resolved, channel):  # noqa: F811
    customer_says(channel, survey_of(resolved), "text", "Where is my refund?")
    assert not SatisfactionRating.objects.exists()
    assert Conversation.objects.get(pk=resolved.pk).status == ConversationStatus.OPEN


def test_an_answer_and_a_question_rate_but_stay_open(resolved, channel):  # noqa: F811
    tapped = message(
        "interactive", {"type": "list_reply", "list_reply": {"id": "csat:2", "title": "2"}}
    )
    question = message("text", {"body": "And my refund?"})
    assert post(channel, notification(change([tapped, question]))).status_code == 200
    run_tasks(retries_due=True)
    assert SatisfactionRating.objects.get(conversation=resolved).rating == 2
    assert Conversation.objects.get(pk=resolved.pk).status == ConversationStatus.OPEN


def test_a_second_tap_after_rating_changes_nothing(resolved, channel):  # noqa: F811
    survey = survey_of(resolved)
    customer_says(channel, survey, "list_reply", {"id": "csat:5", "title": "5"})
    customer_says(channel, survey, "list_reply", {"id": "csat:1", "title": "1"})
    assert SatisfactionRating.objects.get(conversation=resolved).rating == 5
    # The second tap reopened the conversation again; it is left for an agent to see.
    assert Conversation.objects.get(pk=resolved.pk).status == ConversationStatus.OPEN
