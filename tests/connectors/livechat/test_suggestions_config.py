"""The widget's article suggestions, as its session config says: on (``config.suggest``, the
help center's same-origin ``suggest.json`` in the visitor's language) only while the
workspace's help center is switched on and offers that language; that address answers with
the workspace's public articles, and never another workspace's."""

from __future__ import annotations

import pytest
from django.test import Client

from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel
from loket.knowledge.models import HelpCenter
from tests import factories
from tests.connectors.livechat.test_widget_api import start
from tests.knowledge.test_retrieval import publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(workspace):
    channel, _shown = create_channel(
        workspace, get_connector("livechat"), name="Website", config={"title": "Shop support"}
    )
    return channel


def test_off_without_a_help_center_or_while_it_is_off(chat, workspace):
    assert start(chat, locale="en")["config"]["suggest"] == ""
    found = HelpCenter.objects.create(workspace=workspace, enabled=False, locales=["en", "nl"])
    assert start(chat, locale="en")["config"]["suggest"] == ""
    found.enabled = True
    found.save()
    assert start(chat, locale="en")["config"]["suggest"] == "/help/acme/en/suggest.json"


def test_on_in_the_visitors_language_only_when_the_help_center_offers_it(chat, workspace):
    HelpCenter.objects.create(workspace=workspace, enabled=True, default_locale="en")
    assert start(chat, locale="nl-NL")["config"]["suggest"] == ""
    assert start(chat, locale="en-GB")["config"]["suggest"] == "/help/acme/en/suggest.json"

    HelpCenter.objects.filter(workspace=workspace).update(locales=["en", "nl"])
    shown = start(chat, locale="nl-NL")["config"]
    assert shown["suggest"] == "/help/acme/nl/suggest.json"
    assert shown["texts"]["suggestions"]  # the list's heading, in the visitor's language


def test_the_address_answers_with_the_workspaces_articles_only(chat, workspace):
    other_workspace = factories.workspace("bravo")
    HelpCenter.objects.create(workspace=workspace, enabled=True, locales=["en"])
    HelpCenter.objects.create(workspace=other_workspace, enabled=True, locales=["en"])
    publish(
        workspace,
        {"en": ("Travelling with pets", "Dogs and cats travel free on all our ferries.")},
        False,
    )
    publish(
        other_workspace,
        {"en": ("Pets in the hotel", "Dogs are welcome in every room of our hotel.")},
        False,
    )
    suggest = start(chat, locale="en")["config"]["suggest"]
    response = Client().get(suggest, {"q": "can my dog come along?"})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    titles = [r["title"] for r in response.json()["results"]]
    assert titles == ["Travelling with pets"]
    assert response.json()["results"][0]["url"].endswith("/help/acme/en/a/travelling-with-pets/")
