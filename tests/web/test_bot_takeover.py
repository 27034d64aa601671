"""The flow bot in the agent's conversation view: the header says the bot is talking (and where
it is) with "Take over"; taking over over htmx stops it and writes the activity line; the line is
gone once the bot is not talking; another workspace's conversation is a 404; the indicator costs
one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from loket.bots import services
from loket.bots.models import BotSession, SessionState
from loket.inbox.models import Conversation, Message
from tests import factories
from tests.connectors.providers import run_tasks

FLOW = {
    "start": "welcome",
    "language": "en",
    "steps": {
        "welcome": {"type": "message", "text": "Hi! I am the ferry helper.", "next": "need"},
        "need": {
            "type": "choice",
            "title": "What they need",
            "text": "What do you need?",
            "options": [
                {"id": "change", "title": "Change booking", "next": "bye"},
                {"id": "human", "title": "A person", "next": "human"},
            ],
        },
        "bye": {"type": "message", "text": "Noted, thank you!"},
        "human": {"type": "handoff", "text": "A colleague will help you.", "note": False},
    },
}
TALKING = "Bot “Ferry booking helper” is talking"


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


def with_flow(workspace):
    flow = services.create_flow(workspace, name="Ferry booking helper", draft=FLOW)
    services.publish(flow)
    services.update_flow(flow, enabled=True)
    return flow


def says(channel, text, contact_id="cust-1") -> Conversation:
    result = factories.inbound(channel, text, contact_id=contact_id, name="Sanne de Vries")
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


@pytest.fixture
def agent_client(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    return client


def csrf_headers(client, workspace_slug="acme") -> dict:
    client.get(f"/w/{workspace_slug}/")  # sets the CSRF cookie, as the app's pages do
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value, "HTTP_HX_REQUEST": "true"}


def test_the_header_says_the_bot_is_talking_and_where(shop, workspace, agent_client):
    with_flow(workspace)
    conversation = says(shop, "Hello")
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert TALKING in pane
    assert "waiting for the customer's answer at “What they need”" in pane
    assert f'hx-post="/w/acme/inbox/{conversation.number}/take-over/"' in pane
    head = agent_client.get(f"/w/acme/inbox/{conversation.number}/head/").content.decode()
    assert TALKING in head and "Take over" in head


def test_no_line_without_a_bot_talking(shop, workspace, agent_client):
    quiet = says(shop, "Hello", contact_id="before-the-flow")  # no flow yet
    with_flow(workspace)
    handed_off = says(shop, "Hello")
    says(shop, "A person")  # the bot hands off
    assert BotSession.objects.get(conversation=handed_off).state == SessionState.HANDED_OFF
    for conversation in (quiet, handed_off):
        page = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
        assert "is talking" not in page and "take-over" not in page
        assert 'id="conv-bot"' in page  # the place a bot that starts later appears in


def test_take_over_stops_the_bot_and_the_bot_stays_quiet(shop, workspace, agent, agent_client):
    with_flow(workspace)
    conversation = says(shop, "Hello")
    url = f"/w/acme/inbox/{conversation.number}/take-over/"
    assert agent_client.post(url).status_code == 403  # no CSRF token
    assert agent_client.get(url).status_code == 405
    assert BotSession.objects.get(conversation=conversation).state == SessionState.ACTIVE

    response = agent_client.post(url, **csrf_headers(agent_client))
    assert response.status_code == 200
    head = response.content.decode()
    assert 'id="conv-head"' in head and TALKING not in head and "take-over" not in head
    session = BotSession.objects.get(conversation=conversation)
    assert session.state == SessionState.STOPPED and session.ended_at is not None
    pane = agent_client.get(f"/w/acme/inbox/{conversation.number}/pane/").content.decode()
    assert "Abe Agent took over from bot “Ferry booking helper”" in pane

    says(shop, "Change booking")  # the bot asked this; now it is the agent's to answer
    bot_lines = Message.objects.filter(conversation=conversation, author_type="bot")
    assert list(bot_lines.values_list("text", flat=True)) == [
        "Hi! I am the ferry helper.",
        "What do you need?",
    ]
    again = agent_client.post(url, **csrf_headers(agent_client))  # nothing left to take over
    assert again.status_code == 200
    assert Message.objects.filter(conversation=conversation, text="bot_taken_over").count() == 1


def test_another_workspaces_conversation_is_a_404(shop, workspace, agent_client, agent):
    other = factories.workspace("other")
    with_flow(other)
    theirs = says(factories.api_channel(other), "Hello", contact_id="theirs")
    factories.owner_of(other)
    headers = csrf_headers(agent_client)
    # Not a member of theirs; and no conversation with that number in this workspace.
    assert agent_client.post(
        f"/w/other/inbox/{theirs.number}/take-over/", **headers
    ).status_code == (404)
    assert not Conversation.objects.filter(workspace=workspace, number=theirs.number).exists()
    assert agent_client.post(
        f"/w/acme/inbox/{theirs.number}/take-over/", **headers
    ).status_code == (404)
    assert BotSession.objects.get(conversation=theirs).state == SessionState.ACTIVE


def test_someone_who_is_not_a_member_cannot_take_over(shop, workspace, client):
    with_flow(workspace)
    conversation = says(shop, "Hello")
    url = f"/w/acme/inbox/{conversation.number}/take-over/"
    assert client.post(url).status_code == 302  # signed out: to the sign-in page
    stranger = factories.owner_of(factories.workspace("other"))
    client.force_login(stranger.user)
    assert client.post(url).status_code == 404
    assert BotSession.objects.get(conversation=conversation).state == SessionState.ACTIVE


def test_the_indicator_costs_one_query_bot_or_no_bot(shop, workspace, agent_client):
    quiet = says(shop, "Hello", contact_id="before-the-flow")
    with_flow(workspace)
    talking = says(shop, "Hello")
    counted = {}
    for name, conversation in (("quiet", quiet), ("talking", talking)):
        for part in ("pane", "head"):
            with CaptureQueriesContext(connection) as queries:
                agent_client.get(f"/w/acme/inbox/{conversation.number}/{part}/")
            sessions = [q["sql"] for q in queries.captured_queries if "bots_botsession" in q["sql"]]
            assert len(sessions) == 1, sessions
            counted[name, part] = len(queries.captured_queries)
    assert counted["quiet", "pane"] == counted["talking", "pane"]
    assert counted["quiet", "head"] == counted["talking", "head"]
