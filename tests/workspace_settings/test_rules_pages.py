"""Settings → Rules: the list, the editor's round trip of conditions and actions as JSON, clear
errors that keep what was typed, "test this rule", ordering, switching off, history, and that
agents and other workspaces cannot reach any of it."""

from __future__ import annotations

import json

import pytest

from loket.automation.models import Rule
from loket.automation.rules import service
from loket.tenancy.services import create_team
from tests import factories
from tests.connectors.providers import run_tasks
from tests.workspace_settings.conftest import url

CONDITIONS = {
    "match": "all",
    "conditions": [{"field": "message.text", "operator": "contains", "value": "refund"}],
}


def post_rule(client, workspace, name="Refunds", actions=None, conditions=CONDITIONS, **extra):
    data = {
        "name": name,
        "trigger": "message_received",
        "enabled": "on",
        "conditions": json.dumps(conditions),
        "actions": json.dumps(actions or [{"type": "set_priority", "priority": 3}]),
        **extra,
    }
    return client.post(url("rule-new", workspace), data)


def test_create_from_the_editor_and_see_it_listed(owner_client, workspace):
    team = create_team(workspace, "Billing")
    response = post_rule(
        owner_client,
        workspace,
        actions=[
            {"type": "assign_team", "team_id": team.pk},
            {"type": "set_priority", "priority": 3},
        ],
    )
    assert response.status_code == 302
    rule = Rule.objects.get(workspace=workspace)
    assert rule.conditions == CONDITIONS and rule.actions[0] == {
        "type": "assign_team",
        "team_id": team.pk,
    }
    page = owner_client.get(url("rules", workspace)).content.decode()
    assert "Refunds" in page and "Assign to team, Set priority" in page
    assert "whsec_" in page  # the webhook signing secret for receivers
    editor = owner_client.get(url("rule-edit", workspace, rule.pk)).content.decode()
    assert 'id="rule-catalog"' in editor and 'id="rule-state"' in editor
    assert "This rule has not run yet." in editor


def test_a_mistake_is_explained_and_what_was_typed_is_kept(owner_client, workspace):
    response = post_rule(
        owner_client, workspace, name="Keep me", actions=[{"type": "set_priority", "priority": 42}]
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "unknown priority “42”" in html and 'value="Keep me"' in html
    assert not Rule.objects.exists()
    garbled = owner_client.post(
        url("rule-new", workspace),
        {"name": "x", "trigger": "message_received", "conditions": "{not json", "actions": "[]"},
    )
    assert garbled.status_code == 400 and "could not be read" in garbled.content.decode()


def test_order_switch_off_and_delete(owner_client, workspace, owner):
    a = service.create_rule(
        workspace, name="A", trigger="message_received", actions=[{"type": "unassign"}]
    )
    b = service.create_rule(
        workspace, name="B", trigger="message_received", actions=[{"type": "unassign"}]
    )
    owner_client.post(url("rule-move", workspace, b.pk), {"direction": "up"})
    assert [r.name for r in service.rules_of(workspace.pk)] == ["B", "A"]
    owner_client.post(url("rule-enabled", workspace, a.pk), {"enabled": "0"})
    a.refresh_from_db()
    assert a.enabled is False
    owner_client.post(url("rule-delete", workspace, a.pk))
    assert list(Rule.objects.values_list("name", flat=True)) == ["B"]


def test_test_panel_explains_each_condition(owner_client, workspace, transactional_db):
    channel = factories.api_channel(workspace)
    result = factories.inbound(channel, "I want a refund")
    run_tasks()
    from loket.inbox.models import Conversation

    number = Conversation.objects.get(pk=result.conversation_id).number
    answer = owner_client.post(
        url("rule-test", workspace),
        {
            "conversation": f"#{number}",
            "conditions": json.dumps(CONDITIONS),
            "actions": json.dumps([{"type": "set_priority", "priority": 3}]),
        },
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert f"The rule would act on #{number}." in html
    assert "I want a refund" in html and "✓" in html and "Set priority" in html
    missing = owner_client.post(
        url("rule-test", workspace),
        {"conversation": "99999", "conditions": json.dumps(CONDITIONS), "actions": "[]"},
    )
    assert missing.status_code == 400 and "no conversation #99999" in missing.content.decode()


def test_history_shows_what_each_run_did(owner_client, workspace, transactional_db):
    rule = service.create_rule(
        workspace,
        name="Label it",
        trigger="message_received",
        actions=[{"type": "add_labels", "labels": ["seen"]}],
    )
    channel = factories.api_channel(workspace)
    factories.inbound(channel, "hello")
    run_tasks()
    html = owner_client.get(url("rule-edit", workspace, rule.pk)).content.decode()
    assert "Add labels: seen" in html and "Done" in html


@pytest.mark.parametrize("page", ["rules", "rule-new"])
def test_agents_are_refused(agent_client, workspace, page):
    assert agent_client.get(url(page, workspace)).status_code == 403


def test_another_workspaces_rule_is_404(owner_client, workspace, other_workspace):
    theirs = service.create_rule(
        other_workspace, name="Theirs", trigger="message_received", actions=[{"type": "unassign"}]
    )
    assert owner_client.get(url("rule-edit", workspace, theirs.pk)).status_code == 404
    assert owner_client.post(url("rule-delete", workspace, theirs.pk)).status_code == 404
    assert owner_client.post(url("rule-move", workspace, theirs.pk)).status_code == 404
    assert Rule.objects.filter(pk=theirs.pk).exists()


def test_the_conversation_shows_the_rules_activity_lines(owner_client, workspace, transactional_db):
    from django.urls import reverse

    from loket.inbox.models import Conversation

    service.create_rule(
        workspace,
        name="Label it",
        trigger="message_received",
        actions=[{"type": "add_labels", "labels": ["seen"]}],
    )
    channel = factories.api_channel(workspace)
    result = factories.inbound(channel, "hello")
    run_tasks()
    number = Conversation.objects.get(pk=result.conversation_id).number
    html = owner_client.get(reverse("inbox:pane", args=[workspace.slug, number])).content.decode()
    assert "Rule “Label it” ran" in html
    assert "Rule “Label it” set the labels: seen" in html
