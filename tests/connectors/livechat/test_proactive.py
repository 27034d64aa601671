"""Proactive messages: rules per live-chat channel, validated on setup and filtered for the
widget (business hours, the visitor's language)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from loket.connectors.base import InvalidConfig
from loket.connectors.livechat import proactive
from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel
from loket.tenancy import hours

pytestmark = pytest.mark.django_db

RULES = [
    {"message": "Need help with your order?", "url_contains": "/Checkout", "seconds_on_page": 30,
     "texts": {"nl": "Hulp nodig bij je bestelling?"}},
    {"message": "Welcome back!", "returning_only": True},
    {"message": "We are online, ask us anything.", "business_hours_only": True},
]  # fmt: skip


@pytest.fixture
def chat(workspace):
    channel, _ = create_channel(
        workspace, get_connector("livechat"), name="Website", config={"proactive": RULES}
    )
    return channel


def close(workspace) -> None:
    """Closed: open one minute a week, and today a holiday (in any time zone)."""
    today = dt.date.today()
    workspace.business_hours = {"mon": [["00:00", "00:01"]]}
    workspace.holidays = [(today + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    workspace.save()
    assert not hours.is_open(workspace)


def session(channel, **body) -> dict:
    response = Client().post(
        f"/widget/{channel.uuid}/api/session", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("hi", "must be a list"),
        ([{"message": "x"}] * 11, "at most 10 rules"),
        (["hi"], r"proactive\[0\] must be an object"),
        ([{}], r"proactive\[0\] needs a message"),
        ([{"message": ""}], r"proactive\[0\]\.message must not be empty"),
        ([{"message": "   "}], "must not be empty"),
        ([{"message": "x" * 501}], "longer than 500"),
        ([{"message": 5}], "message must be text"),
        ([{"message": "x", "url_contains": "y" * 201}], "url_contains is longer than 200"),
        ([{"message": "x", "url_contains": 3}], "url_contains must be text"),
        ([{"message": "x", "seconds_on_page": -1}], "between 0 and 3600"),
        ([{"message": "x", "seconds_on_page": 3601}], "between 0 and 3600"),
        ([{"message": "x", "seconds_on_page": "30"}], "whole number"),
        ([{"message": "x", "seconds_on_page": True}], "whole number"),
        ([{"message": "x", "returning_only": "yes"}], "returning_only must be true or false"),
        ([{"message": "x", "business_hours_only": 1}], "business_hours_only must be true"),
        ([{"message": "x", "texts": "nl"}], "texts must map a language"),
        ([{"message": "x", "texts": {"Dutch!": "Hoi"}}], "not a language code"),
        ([{"message": "x", "texts": {"nl": ""}}], r"texts\.nl must not be empty"),
        ([{"message": "ok"}, {"message": "x", "colour": "red"}], r"proactive\[1\]: unknown"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(value, reason):
    with pytest.raises(InvalidConfig, match=reason):
        proactive.clean_rules(value)


def test_rules_are_cleaned_with_defaults():
    assert proactive.clean_rules(None) == []
    assert proactive.clean_rules([{"message": " Hi ", "texts": {"NL": "Hoi"}}]) == [
        {
            "message": "Hi",
            "url_contains": "",
            "seconds_on_page": 0,
            "returning_only": False,
            "business_hours_only": False,
            "texts": {"nl": "Hoi"},
        }
    ]


def test_setup_validates_the_proactive_setting(chat):
    connector = get_connector("livechat")
    with pytest.raises(InvalidConfig, match="proactive"):
        connector.setup({"proactive": [{"message": "x", "seconds_on_page": 99999}]})
    assert connector.setup({}).settings["proactive"] == []
    assert [r["message"] for r in chat.settings["proactive"]] == [r["message"] for r in RULES]
    # Changing another setting keeps the rules.
    kept = connector.setup({"title": "Help"}, existing=chat).settings["proactive"]
    assert kept == chat.settings["proactive"]


def test_the_widget_gets_the_rules_in_its_language(chat):
    english = proactive.rules_for_widget(chat, "en")
    assert english[0] == {
        "id": 0,
        "message": "Need help with your order?",
        "url_contains": "/Checkout",
        "seconds_on_page": 30,
        "returning_only": False,
    }
    assert english[1]["returning_only"] is True and english[1]["message"] == "Welcome back!"
    dutch = proactive.rules_for_widget(chat, "nl")
    assert dutch[0]["message"] == "Hulp nodig bij je bestelling?"
    assert dutch[1]["message"] == "Welcome back!"  # no Dutch text: the rule's message
    assert proactive.rules_for_widget(chat, "nl-BE")[0]["message"].startswith("Hulp")


def test_business_hours_only_rules_are_left_out_while_closed(chat, workspace):
    assert [r["id"] for r in proactive.rules_for_widget(chat, "en")] == [0, 1, 2]  # always open
    close(workspace)
    chat.refresh_from_db()
    # ids stay the rules' positions, so the widget's dismissals keep pointing at them
    assert [r["id"] for r in proactive.rules_for_widget(chat, "en")] == [0, 1]


def test_a_channel_without_rules_sends_none(workspace):
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Plain", config={})
    assert session(channel)["config"]["proactive"] == []


def test_the_session_returns_the_rules_in_config(chat, workspace):
    config = session(chat, locale="nl-NL")["config"]
    assert [r["id"] for r in config["proactive"]] == [0, 1, 2]
    assert config["proactive"][0]["message"] == "Hulp nodig bij je bestelling?"
    assert "texts" not in config["proactive"][0]
    assert "business_hours_only" not in config["proactive"][2]

    close(workspace)
    config = session(chat, locale="en")["config"]
    assert [r["message"] for r in config["proactive"]] == [
        "Need help with your order?",
        "Welcome back!",
    ]
