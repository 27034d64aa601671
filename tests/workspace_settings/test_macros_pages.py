"""Settings → Macros and the conversation's "Macros" menu: listing, creating and editing with the
rules' action editor, who may change which, another workspace's macro is a 404, and running
one from the conversation header."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from loket.automation import macros
from loket.automation.models import Macro
from loket.inbox.models import Conversation, ConversationStatus, Message
from loket.tenancy.services import create_team
from tests import factories
from tests.workspace_settings.conftest import url

SPAM = [{"type": "add_labels", "labels": ["spam"]}, {"type": "set_status", "status": "resolved"}]


@pytest.fixture
def shared_macro(owner):
    return macros.create_macro(owner, name="Close as spam", shared=True, actions=SPAM)


@pytest.fixture
def conversation(workspace):
    channel = factories.api_channel(workspace, name="Shop")
    result = factories.inbound(channel, "Buy cheap watches", contact_id="spammer")
    return Conversation.objects.get(pk=result.conversation_id)


def test_the_list_shows_shared_and_own_macros(agent_client, agent, owner, shared_macro, workspace):
    mine = macros.create_macro(agent, name="My triage", actions=[{"type": "unassign"}])
    theirs = macros.create_macro(owner, name="Owner's own", actions=[{"type": "unassign"}])
    page = agent_client.get(url("macros", workspace))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Close as spam" in html and "My triage" in html and "Owner&#x27;s own" not in html
    assert url("macro-edit", workspace, mine.pk) in html
    assert url("macro-edit", workspace, shared_macro.pk) not in html  # not the agent's to change
    assert theirs.pk


def test_creating_a_macro_with_the_editors_json(admin_client, admin, workspace):
    team = create_team(workspace, "Billing")
    actions = [{"type": "assign_team", "team_id": team.pk}, *SPAM]
    answer = admin_client.post(
        url("macro-new", workspace),
        {"name": "Billing spam", "actions": json.dumps(actions), "shared": "on"},
    )
    assert answer.status_code == 302
    macro = Macro.objects.get(name="Billing spam")
    assert macro.is_shared and macro.actions == actions
    # The editor page offers the rules' catalogue and the macro's actions.
    page = admin_client.get(url("macro-edit", workspace, macro.pk))
    assert page.status_code == 200
    assert 'id="rule-catalog"' in page.content.decode()
    assert "assign_team" in page.content.decode()


def test_a_wrong_action_is_shown_and_nothing_saved(agent_client, workspace):
    answer = agent_client.post(
        url("macro-new", workspace),
        {"name": "Bad", "actions": json.dumps([{"type": "set_status", "status": "gone"}])},
    )
    assert answer.status_code == 400
    assert "unknown status" in answer.content.decode()
    assert not Macro.objects.exists()


def test_an_agent_cannot_share_or_change_shared_macros(agent_client, workspace, shared_macro):
    answer = agent_client.post(
        url("macro-new", workspace),
        {"name": "Mine", "actions": json.dumps(SPAM), "shared": "on"},
    )
    assert answer.status_code == 302
    assert Macro.objects.get(name="Mine").is_shared is False  # personal, whatever was posted
    assert agent_client.get(url("macro-edit", workspace, shared_macro.pk)).status_code == 403
    edit = agent_client.post(
        url("macro-edit", workspace, shared_macro.pk), {"name": "x", "actions": "[]"}
    )
    assert edit.status_code == 403
    assert agent_client.post(url("macro-delete", workspace, shared_macro.pk)).status_code == 403
    shared_macro.refresh_from_db()
    assert shared_macro.name == "Close as spam"


def test_another_workspaces_macro_is_a_404(owner_client, workspace, other_workspace):
    foreign = macros.create_macro(
        factories.owner_of(other_workspace), name="x", shared=True, actions=SPAM
    )
    assert owner_client.get(url("macro-edit", workspace, foreign.pk)).status_code == 404
    assert owner_client.post(url("macro-delete", workspace, foreign.pk)).status_code == 404
    assert Macro.objects.filter(pk=foreign.pk).exists()


def test_deleting_an_own_macro(agent_client, agent, workspace):
    mine = macros.create_macro(agent, name="Mine", actions=SPAM)
    assert agent_client.post(url("macro-delete", workspace, mine.pk)).status_code == 302
    assert not Macro.objects.filter(pk=mine.pk).exists()


# -- the conversation's menu --------------------------------------------------------------------
def test_the_conversation_menu_lists_and_runs_macros(
    agent_client, agent, workspace, shared_macro, conversation
):
    pane = agent_client.get(
        reverse("inbox:head", args=[workspace.slug, conversation.number])
    ).content.decode()
    menu_url = reverse("inbox:macros", args=[workspace.slug, conversation.number])
    assert menu_url in pane
    menu = agent_client.get(menu_url).content.decode()
    run_url = reverse(
        "inbox:macro_run", args=[workspace.slug, conversation.number, shared_macro.pk]
    )
    assert "Close as spam" in menu and run_url in menu
    answer = agent_client.post(run_url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert "Ran “Close as spam”" in json.loads(answer.headers["HX-Trigger"])["loket:toast"]["text"]
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    line = Message.objects.get(conversation=conversation, data__action="macro_ran")
    assert line.author_member_id == agent.pk


def test_running_another_workspaces_macro_from_the_inbox_is_a_404(
    agent_client, workspace, other_workspace, conversation
):
    foreign = macros.create_macro(
        factories.owner_of(other_workspace), name="x", shared=True, actions=SPAM
    )
    run_url = reverse("inbox:macro_run", args=[workspace.slug, conversation.number, foreign.pk])
    assert agent_client.post(run_url).status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN
