"""Enrichment after ingest (loket.knowledge.enrichment): a background sweep — never the ingest's
transaction — gives conversations a sentiment and urgency estimate from their latest customer
messages (English and Dutch; short messages stay neutral), emits the changes for the rules, and
the rules, the sidebar and the API read them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from loket.automation.models import RuleTrigger
from loket.automation.rules import conditions, service
from loket.automation.rules.facts import Facts
from loket.inbox.models import Conversation, Message
from loket.inbox.services.conversations import ensure_labels
from loket.knowledge import enrichment
from loket.knowledge.models import ConversationInsight, SweepMark
from loket.problems import Invalid
from tests import factories
from tests.connectors.providers import run_tasks

_seen: list = []


def remember(event) -> None:
    _seen.append(event)


@pytest.fixture
def captured_events(settings):
    """Events as emitted (through the enqueuers' hook, inside the emitting transaction)."""
    from loket import events

    settings.LOKET_EVENT_ENQUEUERS = [*settings.LOKET_EVENT_ENQUEUERS, f"{__name__}.remember"]
    events._enqueuers.cache_clear()
    _seen.clear()
    yield _seen
    events._enqueuers.cache_clear()


def writes(channel, text, contact="c-1") -> Conversation:
    result = factories.inbound(channel, text, contact_id=contact, name="Klant")
    return Conversation.objects.get(pk=result.conversation_id)


def insight(conversation) -> ConversationInsight:
    return ConversationInsight.objects.get(conversation=conversation)


def updates(events_seen, conversation) -> list[dict]:
    return [
        e.changes
        for e in events_seen
        if e.name == "conversation.updated" and e.conversation_id == conversation.pk
    ]


def test_the_sweep_estimates_after_ingest_never_inside_it(workspace, captured_events):
    channel = factories.api_channel(workspace)
    with CaptureQueriesContext(connection) as ingest:
        angry = writes(channel, "This is the third time I ask for my refund. Still nothing!", "a")
    assert not [q for q in ingest.captured_queries if "knowledge_" in q["sql"]]
    assert not DBTaskResult.objects.filter(task_path__contains="enrich").exists()
    dutch = writes(
        channel, "Dringend: de boot vertrekt vandaag om 15:00 en mijn ticket is weg.", "b"
    )
    happy = writes(channel, "Bedankt voor de snelle hulp, top geregeld!", "c")
    short = writes(channel, "ok", "d")
    question = writes(channel, "What time does the restaurant open on Sundays?", "e")
    assert not ConversationInsight.objects.exists()  # nothing decided during ingest

    assert enrichment.sweep() == 5
    assert (insight(angry).sentiment, insight(angry).urgency) == ("negative", "high")
    assert insight(angry).sentiment_score < -0.3
    assert insight(dutch).urgency == "high"
    assert (insight(happy).sentiment, insight(happy).urgency) == ("positive", "low")
    assert (insight(short).sentiment, insight(short).urgency) == ("neutral", "normal")
    assert (insight(question).sentiment, insight(question).urgency) == ("neutral", "normal")
    assert insight(short).message_id == Message.objects.filter(conversation=short).last().pk

    # Changes go out for the rules; an ordinary neutral message is no change.
    assert updates(captured_events, angry) == [{"sentiment": "negative", "urgency": "high"}]
    assert updates(captured_events, happy) == [{"sentiment": "positive", "urgency": "low"}]
    assert updates(captured_events, short) == []
    assert updates(captured_events, question) == []
    assert all(
        e.actor.type == "system" for e in captured_events if e.name == "conversation.updated"
    )

    # Everything read once; the newest message weighs most when the customer writes again.
    assert enrichment.sweep() == 0
    assert SweepMark.objects.get(name=enrichment.SWEEP).last_id > 0
    captured_events.clear()
    factories.inbound(channel, "Got it now, thank you so much, great help!", contact_id="a")
    factories.inbound(channel, "Great, thanks a lot, problem solved!", contact_id="a")
    assert enrichment.sweep() == 2
    assert insight(angry).sentiment == "positive"
    assert updates(captured_events, angry)[0]["sentiment"] == "positive"


def test_several_messages_within_minutes_are_urgent(workspace):
    channel = factories.api_channel(workspace)
    conversation = writes(channel, "Hello, is anyone there?", "a")
    writes(channel, "Hello?", "a")
    enrichment.sweep()
    assert insight(conversation).urgency == "normal"
    writes(channel, "Can someone answer please", "a")
    enrichment.sweep()
    assert insight(conversation).urgency == "high"
    # The same three messages spread over an afternoon are not.
    now = timezone.now()
    for hours, message in enumerate(Message.objects.filter(conversation=conversation)):
        Message.objects.filter(pk=message.pk).update(created_at=now - dt.timedelta(hours=3 - hours))
    enrichment.enrich(conversation.pk, workspace.pk)
    assert insight(conversation).urgency == "normal"


def test_one_message_in_both_languages():
    assert enrichment.estimate("Ik ben niet blij met deze service.").sentiment == "negative"
    assert enrichment.estimate("I am not happy with how this was handled.").sentiment == (
        "negative"
    )
    assert enrichment.estimate("Niet slecht, de levering ging vlot.").sentiment == "positive"
    assert enrichment.estimate("Not bad at all, the delivery was fine.").sentiment == "positive"
    assert enrichment.estimate("Hoe laat vertrekt de boot?").sentiment == "neutral"
    loud = enrichment.estimate("WHY IS NOBODY ANSWERING")
    calm = enrichment.estimate("why is nobody answering")
    assert loud.score < calm.score < 0 and loud.urgency == "high"
    assert enrichment.estimate("Not urgent, no rush at all.").urgency == "low"
    assert enrichment.estimate("Onze vlucht landt later, halen we vanavond de boot?").urgency == (
        "high"
    )
    assert enrichment.estimate("").sentiment == "neutral"


def test_a_negative_customer_gets_the_unhappy_label_by_rule(transactional_db, workspace):
    channel = factories.api_channel(workspace)
    service.create_rule(
        workspace,
        name="Unhappy customers",
        trigger=RuleTrigger.CONVERSATION_UPDATED,
        conditions={
            "match": "all",
            "conditions": [
                {"field": "update.changed", "operator": "includes_any", "value": ["sentiment"]},
                {"field": "conversation.sentiment", "operator": "is", "value": ["negative"]},
            ],
        },
        actions=[{"type": "add_labels", "labels": ["unhappy"]}],
    )
    grumpy = writes(channel, "The shoes arrived damaged. Very disappointed, this is terrible.", "a")
    fine = writes(channel, "Could you send me the invoice for order 4411?", "b")
    assert not grumpy.labels.exists() and not ConversationInsight.objects.exists()
    run_tasks()  # the worker: the periodic sweep, then the rules its event triggers
    assert list(grumpy.labels.values_list("name", flat=True)) == ["unhappy"]
    assert not fine.labels.exists()


def test_conditions_read_the_insight_lazily_and_once(workspace, django_assert_num_queries):
    channel = factories.api_channel(workspace)
    conversation = writes(channel, "Ik ben erg teleurgesteld, de jas is kapot!", "a")
    enrichment.sweep()
    ConversationInsight.objects.filter(conversation=conversation).update(
        predicted_labels=[{"name": "Damaged", "score": 0.8}]
    )
    facts = Facts.load(conversation.pk, workspace.pk)
    text_only = {"match": "all", "conditions": [
        {"field": "message.text", "operator": "contains", "value": "nothing like it"},
        {"field": "conversation.sentiment", "operator": "is", "value": ["negative"]},
    ]}  # fmt: skip
    with django_assert_num_queries(1):  # the message; the insight is never asked for
        assert not conditions.evaluate(text_only, facts).matched
    about_it = {"match": "all", "conditions": [
        {"field": "conversation.sentiment", "operator": "is", "value": ["negative"]},
        {"field": "conversation.urgency", "operator": "is_not", "value": ["high"]},
        {"field": "conversation.predicted_label", "operator": "includes_any",
         "value": ["damaged"]},
    ]}  # fmt: skip
    with django_assert_num_queries(1):
        verdict = conditions.evaluate(about_it, facts)
    assert verdict.matched
    # Not estimated yet: no sentiment, so "is negative" does not hold.
    other = writes(channel, "Hello there", "b")
    assert not conditions.evaluate(about_it, Facts.load(other.pk, workspace.pk)).matched


def test_saving_checks_the_new_fields(workspace):
    cleaned = conditions.clean(
        {"conditions": [
            {"field": "conversation.urgency", "operator": "is", "value": ["high", "normal"]},
            {"field": "update.changed", "operator": "includes_any",
             "value": ["sentiment", "urgency", "predicted_labels"]},
        ]},
        workspace.pk,
    )  # fmt: skip
    assert cleaned["conditions"][0]["value"] == ["high", "normal"]
    with pytest.raises(Invalid):
        conditions.clean(
            {"conditions": [{"field": "conversation.sentiment", "operator": "is",
                             "value": ["furious"]}]},
            workspace.pk,
        )  # fmt: skip


def test_the_sidebar_shows_the_estimate_and_adds_a_suggested_label(
    client, workspace, owner, django_assert_max_num_queries
):
    client.force_login(owner.user)
    channel = factories.api_channel(workspace)
    conversation = writes(channel, "My parcel still has not arrived, this is ridiculous.", "a")
    delay, other = ensure_labels(workspace.pk, ["delay", "vip"])
    conversation.labels.set([other])
    url = f"/w/acme/inbox/{conversation.number}/pane/"
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        page = client.get(url).content.decode()
    assert 'id="conv-insight"' not in page  # not estimated yet

    enrichment.sweep()
    ConversationInsight.objects.filter(conversation=conversation).update(
        predicted_labels=[{"name": "delay", "score": 0.81}, {"name": "vip", "score": 0.7}]
    )
    with django_assert_max_num_queries(len(before.captured_queries)):  # no query more
        page = client.get(url).content.decode()
    assert 'id="conv-insight"' in page and 'data-sentiment="negative"' in page
    assert "Estimate" in page
    assert 'data-suggested-label="delay"' in page
    assert 'data-suggested-label="vip"' not in page  # already on it

    response = client.post(
        f"/w/acme/inbox/{conversation.number}/update/",
        {"labels": "1", "label": [other.pk, delay.pk]},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["delay", "vip"]
    assert 'data-suggested-label="delay"' not in response.content.decode()


def test_the_api_shows_the_insight_on_the_detail_only(
    workspace, api, django_assert_max_num_queries
):
    channel = factories.api_channel(workspace)
    conversation = writes(
        channel, "URGENT: the ferry leaves today and my booking is cancelled, terrible!!", "a"
    )
    body = api.get(f"/conversations/{conversation.pk}").json()
    assert body["insight"] is None
    enrichment.sweep()
    body = api.get(f"/conversations/{conversation.pk}").json()
    assert body["insight"]["sentiment"] == "negative"
    assert body["insight"]["urgency"] == "high"
    assert body["insight"]["predicted_labels"] == []
    with CaptureQueriesContext(connection) as listing:
        items = api.get("/conversations").json()["items"]
    assert "insight" not in items[0]
    assert not [q for q in listing.captured_queries if "conversationinsight" in q["sql"]]
    other = factories.workspace("elsewhere")
    foreign = writes(factories.api_channel(other), "Where is my parcel?", "z")
    assert api.get(f"/conversations/{foreign.pk}").status_code == 404
