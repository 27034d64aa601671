"""Macros: saving checks the actions like a rule's, who may see and change which, running one as
the agent (the timeline names them, one line names the macro), a failing action reported while
the rest still happen, and the API (another workspace's macro is a 404)."""

from __future__ import annotations

import pytest
from django.http import Http404

from loket.automation import macros
from loket.automation.canned import create_canned_reply
from loket.automation.models import Macro
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Message,
    MessageKind,
    Priority,
)
from loket.tenancy.services import NotAllowed, create_team
from loket.web.inbox.timeline import activity_sentence
from tests import factories
from tests.connectors.providers import run_tasks


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


def customer_writes(channel, text="Hi", *, contact_id="cust-1", name="Sanne de Vries"):
    result = factories.inbound(channel, text, contact_id=contact_id, name=name)
    run_tasks()
    return Conversation.objects.get(pk=result.conversation_id)


def activity(conversation, action):
    return list(
        Message.objects.filter(
            conversation=conversation, kind=MessageKind.ACTIVITY, data__action=action
        ).order_by("pk")
    )


def test_running_a_macro_does_everything_as_the_agent_and_says_so(shop, workspace, owner, agent):
    billing = create_team(workspace, "Billing")
    create_canned_reply(
        owner, shortcut="bye", title="Bye", body="Bye {{contact.first_name}}!", shared=True
    )
    escalate = macros.create_macro(
        owner,
        name="Escalate to billing",
        shared=True,
        actions=[
            {"type": "assign_team", "team_id": billing.pk},
            {"type": "set_priority", "priority": Priority.URGENT},
            {"type": "add_labels", "labels": ["billing"]},
            {"type": "add_note", "text": "Escalated by {{agent.first_name}}"},
            {"type": "set_status", "status": "pending"},
        ],
    )
    conversation = customer_writes(shop, "I was charged twice")
    ran = macros.run_macro(escalate, conversation, actor=agent)
    assert [item["ok"] for item in ran.done] == [True] * 5
    conversation.refresh_from_db()
    assert conversation.team_id == billing.pk
    assert conversation.priority == Priority.URGENT
    assert conversation.status == ConversationStatus.PENDING
    assert list(conversation.labels.values_list("name", flat=True)) == ["billing"]
    # Each change is the agent's own on the timeline.
    for action in ("team_changed", "priority_changed", "labels_changed", "status_changed"):
        [line] = activity(conversation, action)
        assert line.author_member_id == agent.pk and line.author_type == AuthorType.MEMBER
    note = Message.objects.get(conversation=conversation, kind=MessageKind.NOTE)
    assert note.author_member_id == agent.pk
    [line] = activity(conversation, "macro_ran")
    assert line.author_member_id == agent.pk
    assert line.data["macro_id"] == escalate.pk
    assert line.data["macro_name"] == "Escalate to billing"
    assert len(line.data["done"]) == 5
    assert activity_sentence(line, agent.display_name) == (
        f"{agent.display_name} ran macro “Escalate to billing”"
    )
    escalate.refresh_from_db()
    assert escalate.times_used == 1 and escalate.last_used_at is not None


def test_a_failing_action_is_reported_and_the_rest_still_happen(shop, workspace, owner, agent):
    billing = create_team(workspace, "Billing")
    macro = macros.create_macro(
        agent,
        name="Billing, spam",
        actions=[
            {"type": "assign_team", "team_id": billing.pk},
            {"type": "add_labels", "labels": ["spam"]},
        ],
    )
    billing.delete()
    conversation = customer_writes(shop)
    ran = macros.run_macro(macro, conversation, actor=agent)
    assert ran.done[0] == {
        "type": "assign_team",
        "ok": False,
        "detail": "that team was deleted",
        "said": {"message": "that team was deleted", "values": {}},
    }
    assert ran.done[1]["ok"] is True
    assert "Assign to team: that team was deleted" in ran.summary
    assert list(conversation.labels.values_list("name", flat=True)) == ["spam"]
    [line] = activity(conversation, "macro_ran")
    assert "1 action failed" in activity_sentence(line, "Abe")


def test_saving_checks_the_actions_like_a_rule(workspace, owner, agent):
    other = factories.workspace("bravo")
    foreign_team = create_team(other, "Theirs")
    with pytest.raises(macros.InvalidMacro, match="no team"):
        macros.create_macro(
            owner, name="x", actions=[{"type": "assign_team", "team_id": foreign_team.pk}]
        )
    with pytest.raises(macros.InvalidMacro, match="unknown type"):
        macros.create_macro(owner, name="x", actions=[{"type": "delete_everything"}])
    with pytest.raises(macros.InvalidMacro, match="at least one action"):
        macros.create_macro(owner, name="x", actions=[])
    with pytest.raises(macros.InvalidMacro, match="name"):
        macros.create_macro(owner, name="  ", actions=[{"type": "unassign"}])
    # A webhook sends data elsewhere: admins only.
    with pytest.raises(macros.InvalidMacro, match="webhook"):
        macros.create_macro(
            agent, name="x", actions=[{"type": "webhook", "url": "https://example.com/h"}]
        )
    assert macros.create_macro(
        owner, name="x", actions=[{"type": "webhook", "url": "https://example.com/h"}]
    )


def test_who_sees_and_manages_which_macros(workspace, owner, admin, agent):
    shared = macros.create_macro(owner, name="Shared", shared=True, actions=[{"type": "unassign"}])
    mine = macros.create_macro(agent, name="Mine", actions=[{"type": "unassign"}])
    theirs = macros.create_macro(admin, name="Theirs", actions=[{"type": "unassign"}])
    assert list(macros.visible(agent)) == [mine, shared]
    assert list(macros.visible(owner)) == [shared]  # another's personal one: not even admins
    with pytest.raises(Http404):
        macros.get_visible(agent, theirs.pk)
    with pytest.raises(NotAllowed):
        macros.create_macro(agent, name="x", shared=True, actions=[{"type": "unassign"}])
    with pytest.raises(NotAllowed):
        macros.update_macro(shared, actor=agent, name="Mine now")
    with pytest.raises(NotAllowed):
        macros.delete_macro(shared, actor=agent)
    macros.update_macro(mine, actor=agent, name="Renamed", actions=[{"type": "auto_assign"}])
    mine.refresh_from_db()
    assert mine.name == "Renamed" and mine.actions == [{"type": "auto_assign"}]
    macros.update_macro(shared, actor=admin, name="Shared too")
    macros.delete_macro(mine, actor=agent)
    assert not Macro.objects.filter(pk=mine.pk).exists()


def test_another_members_or_workspaces_macro_cannot_be_run(shop, workspace, owner, agent):
    other = factories.workspace("bravo")
    foreign = macros.create_macro(
        factories.owner_of(other), name="x", actions=[{"type": "unassign"}]
    )
    personal = macros.create_macro(owner, name="y", actions=[{"type": "unassign"}])
    conversation = customer_writes(shop)
    for macro in (foreign, personal):
        with pytest.raises(Http404):
            macros.run_macro(macro, conversation, actor=agent)


# -- the API --------------------------------------------------------------------------------------
def test_api_crud_and_run(shop, workspace, owner, agent):
    api = factories.ApiClient(agent)
    created = api.post(
        "/macros",
        {"name": "Spam", "actions": [{"type": "add_labels", "labels": "spam"},
                                     {"type": "set_status", "status": "resolved"}]},
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["shared"] is False and body["owner_id"] == agent.pk
    assert body["actions"][0] == {"type": "add_labels", "labels": ["spam"]}
    macro_id = body["id"]
    assert [m["id"] for m in api.get("/macros").json()] == [macro_id]
    bad = api.post("/macros", {"name": "x", "actions": [{"type": "set_status", "status": "x"}]})
    assert bad.status_code == 400 and "unknown status" in bad.json()["error"]["message"]
    refused = api.post("/macros", {"name": "x", "shared": True, "actions": [{"type": "unassign"}]})
    assert refused.status_code == 403
    patched = api.patch(f"/macros/{macro_id}", {"name": "Spam!"})
    assert patched.json()["name"] == "Spam!"
    conversation = customer_writes(shop)
    ran = api.post(f"/conversations/{conversation.pk}/macros/{macro_id}/run")
    assert ran.status_code == 200, ran.content
    assert ran.json()["failed"] == 0 and len(ran.json()["done"]) == 2
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED
    assert api.delete(f"/macros/{macro_id}").status_code == 204
    assert api.get(f"/macros/{macro_id}").status_code == 404


def test_api_hides_other_workspaces_and_guards_shared_macros(shop, workspace, owner, agent):
    other = factories.workspace("bravo")
    foreign = macros.create_macro(
        factories.owner_of(other), name="x", actions=[{"type": "unassign"}]
    )
    shared = macros.create_macro(owner, name="S", shared=True, actions=[{"type": "unassign"}])
    api = factories.ApiClient(agent)
    conversation = customer_writes(shop)
    assert api.get(f"/macros/{foreign.pk}").status_code == 404
    assert api.patch(f"/macros/{foreign.pk}", {"name": "mine"}).status_code == 404
    assert api.delete(f"/macros/{foreign.pk}").status_code == 404
    run = api.post(f"/conversations/{conversation.pk}/macros/{foreign.pk}/run")
    assert run.status_code == 404
    assert api.patch(f"/macros/{shared.pk}", {"name": "mine"}).status_code == 403
    assert api.delete(f"/macros/{shared.pk}").status_code == 403
    # Running a shared one is every member's.
    assert api.post(f"/conversations/{conversation.pk}/macros/{shared.pk}/run").status_code == 200
