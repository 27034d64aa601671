"""Rules over the REST API: create, read, change, order, delete, history, trying one; admins
change, members read; another workspace's ids are 404."""

from __future__ import annotations

import pytest

from loket.automation.models import RuleRun
from loket.inbox.models import Conversation
from tests import factories
from tests.connectors.providers import run_tasks

REFUND_RULE = {
    "name": "Refunds",
    "trigger": "message_received",
    "conditions": {
        "match": "all",
        "conditions": [{"field": "message.text", "operator": "contains", "value": "refund"}],
    },
    "actions": [
        {"type": "add_labels", "labels": ["refund"]},
        {"type": "set_priority", "priority": 3},
    ],
}


@pytest.fixture
def api(owner):
    return factories.ApiClient(owner)


def test_create_run_and_read_the_history(transactional_db, api, workspace):
    created = api.post("/rules", REFUND_RULE)
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["position"] == 1 and rule["minutes"] is None
    channel = factories.api_channel(workspace)
    result = factories.inbound(channel, "I want a refund")
    run_tasks()
    conversation = Conversation.objects.get(pk=result.conversation_id)
    assert conversation.priority == 3

    [run] = api.get(f"/rules/{rule['id']}/runs").json()
    assert run["conversation_number"] == conversation.number and run["outcome"] == "done"
    assert [d["type"] for d in run["done"]] == ["add_labels", "set_priority"]
    [same] = api.get(f"/conversations/{conversation.pk}/rule-runs").json()
    assert same["id"] == run["id"]


def test_change_order_and_delete(api):
    first = api.post("/rules", REFUND_RULE).json()
    second = api.post("/rules", {**REFUND_RULE, "name": "Second"}).json()
    changed = api.patch(f"/rules/{first['id']}", {"enabled": False, "name": "Refunds (off)"})
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert api.post("/rules/order", {"ids": [second["id"], first["id"]]}).status_code == 204
    assert [r["name"] for r in api.get("/rules").json()] == ["Second", "Refunds (off)"]
    assert api.delete(f"/rules/{first['id']}").status_code == 204
    assert api.get(f"/rules/{first['id']}").status_code == 404


def test_clear_errors_for_what_cannot_run(api):
    bad = api.post("/rules", {**REFUND_RULE, "actions": [{"type": "drop_table"}]})
    assert (
        bad.status_code == 400
        and "action 1: unknown type “drop_table”" in bad.json()["error"]["message"]
    )
    bad = api.patch("/rules/999999", {"name": "x"})
    assert bad.status_code == 404


def test_agents_read_but_do_not_change(api, agent):
    api.post("/rules", REFUND_RULE)
    as_agent = factories.ApiClient(agent)
    assert len(as_agent.get("/rules").json()) == 1
    refused = as_agent.post("/rules", REFUND_RULE)
    assert refused.status_code == 403


def test_another_workspace_sees_404(api, transactional_db):
    rule = api.post("/rules", REFUND_RULE).json()
    other = factories.ApiClient(factories.owner_of(factories.workspace("other")))
    assert other.get(f"/rules/{rule['id']}").status_code == 404
    assert other.patch(f"/rules/{rule['id']}", {"name": "mine"}).status_code == 404
    assert other.delete(f"/rules/{rule['id']}").status_code == 404
    assert other.get(f"/rules/{rule['id']}/runs").status_code == 404
    assert other.post("/rules/order", {"ids": [rule["id"]]}).status_code == 400


def test_trying_a_rule_acts_on_nothing(transactional_db, api, workspace):
    channel = factories.api_channel(workspace)
    result = factories.inbound(channel, "Refund please")
    run_tasks()
    answer = api.post(
        "/rules/test",
        {
            "conversation_id": result.conversation_id,
            "conditions": REFUND_RULE["conditions"],
            "actions": REFUND_RULE["actions"],
        },
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["matched"] is True
    assert (
        body["conditions"][0]["held"] is True and body["conditions"][0]["actual"] == "Refund please"
    )
    assert [a["type"] for a in body["would_do"]] == ["add_labels", "set_priority"]
    assert not RuleRun.objects.exists()
    assert Conversation.objects.get(pk=result.conversation_id).priority == 0
