"""The workspace's own label model (loket.knowledge.enrichment): trained in the background on the
conversations its agents labelled (a hand-written ferry history in English and Dutch,
tests/knowledge/data/labelled_history.json), measured on held-out conversations, suggesting
labels for new conversations without applying them, retrained only when due, and never
mixing workspaces."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.utils import timezone

from loket.inbox.models import Conversation
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.knowledge import enrichment
from loket.knowledge.models import ConversationInsight, LabelModel
from tests import factories

HISTORY = json.loads((Path(__file__).parent / "data" / "labelled_history.json").read_text())


def labelled_conversations(workspace, items, prefix="h"):
    channel = factories.api_channel(workspace, name=f"History {prefix}")
    for number, item in enumerate(items):
        for text in item["messages"]:
            result = factories.inbound(channel, text, contact_id=f"{prefix}{number}")
        conversation = Conversation.objects.get(pk=result.conversation_id)
        conversation.labels.set(ensure_labels(workspace.pk, item["labels"]))
    return channel


@pytest.fixture
def ferry(workspace):
    labelled_conversations(workspace, HISTORY["conversations"])
    return workspace


def suggested(channel, text, contact):
    result = factories.inbound(channel, text, contact_id=contact)
    enrichment.sweep()
    insight = ConversationInsight.objects.get(conversation_id=result.conversation_id)
    return [item["name"] for item in insight.predicted_labels], result.conversation_id


def test_trained_on_the_workspaces_labelled_history(ferry):
    assert enrichment.train_due() == [ferry.pk]
    model = LabelModel.objects.get(workspace=ferry)
    # "booking-change" was given three times: too few to learn from.
    assert model.labels == ["delay", "lost-item", "refund"]
    assert model.samples == len(HISTORY["conversations"])
    print(f"\nheld-out top-1 accuracy {model.accuracy} ({model.samples} conversations)")
    assert model.accuracy is not None and model.accuracy >= 0.6
    assert enrichment.train_due() == []  # just trained: nothing is due

    channel = factories.api_channel(ferry, name="Live")
    labels, refund_id = suggested(
        channel, "When will I get my money back for the cancelled trip?", "n1"
    )
    assert labels == ["refund"]
    assert suggested(channel, "Is de boot van vanavond vertraagd?", "n2")[0] == ["delay"]
    assert suggested(channel, "Ik ben mijn zonnebril kwijt, is die gevonden aan boord?", "n3")[
        0
    ] == ["lost-item"]
    assert suggested(channel, "Hi", "n4")[0] == []
    # Suggestions only: nothing is applied.
    assert not Conversation.objects.get(pk=refund_id).labels.exists()


def test_a_workspace_with_too_little_history_gets_no_model(workspace):
    labelled_conversations(workspace, HISTORY["conversations"][:20])
    assert enrichment.train_due() == []
    assert enrichment.train_workspace(workspace.pk) is None
    assert not LabelModel.objects.exists()
    channel = factories.api_channel(workspace, name="Live")
    assert suggested(channel, "Where is my refund? It has been weeks.", "n1")[0] == []


def test_retrained_when_due(ferry):
    enrichment.train_due()
    model = LabelModel.objects.get(workspace=ferry)
    now = timezone.now()
    labelled = model.samples
    assert not enrichment.retraining_due(ferry.pk, labelled, model, now)
    assert enrichment.retraining_due(ferry.pk, labelled + enrichment.RETRAIN_AFTER, model, now)
    assert not enrichment.retraining_due(ferry.pk, 29, None, now)
    assert enrichment.retraining_due(ferry.pk, 30, None, now)
    # A day old, nothing labelled since: not due; a conversation labelled since: due.
    LabelModel.objects.filter(pk=model.pk).update(trained_at=now - dt.timedelta(days=2))
    assert enrichment.train_due() == []
    conversation = Conversation.objects.filter(workspace=ferry, labels__name="delay").first()
    update_conversation(
        conversation, actor=None, labels=ensure_labels(ferry.pk, ["delay", "refund"])
    )
    assert enrichment.labelled_since(ferry.pk, now - dt.timedelta(days=2)) == 1
    assert enrichment.train_due() == [ferry.pk]
    assert LabelModel.objects.get(pk=model.pk).trained_at > now - dt.timedelta(minutes=1)
    # Labelled again within the day: not yet (unless RETRAIN_AFTER of them).
    update_conversation(conversation, actor=None, labels=ensure_labels(ferry.pk, ["delay"]))
    assert enrichment.train_due() == []


def test_workspaces_are_never_mixed(ferry):
    other = factories.workspace("rederij")
    # The other workspace labels the same kind of questions its own way.
    items = [
        {"labels": ["billing" if item["labels"] == ["refund"] else "complaint"], **{
            "messages": item["messages"]}}
        for item in HISTORY["conversations"]
        if item["labels"] in (["refund"], ["delay"])
    ]  # fmt: skip
    labelled_conversations(other, items, prefix="o")
    assert sorted(enrichment.train_due()) == sorted([ferry.pk, other.pk])
    mine, theirs = LabelModel.objects.get(workspace=ferry), LabelModel.objects.get(workspace=other)
    assert mine.labels == ["delay", "lost-item", "refund"]
    assert theirs.labels == ["billing", "complaint"]
    assert (mine.samples, theirs.samples) == (len(HISTORY["conversations"]), len(items))
    text = "I want a refund, I was charged twice for my crossing."
    assert suggested(factories.api_channel(ferry, name="Live"), text, "m")[0] == ["refund"]
    assert suggested(factories.api_channel(other, name="Live"), text, "t")[0] == ["billing"]
