"""SLA policies on the screens and the API: Settings → SLA policies (admin-only, another
workspace's policy is a 404), the due-time chips in the list and the conversation header, the
list sorted by SLA due, and ``/api/v1/sla-policies``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from loket.automation import clock, sla
from loket.automation.models import SlaPolicy
from loket.inbox.models import Conversation, Priority
from loket.inbox.services.conversations import update_conversation
from tests import factories
from tests.workspace_settings.conftest import url


def signed_in(membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def grid(**minutes) -> dict:
    """Form data for the targets grid: ``t_4_first_response=15`` …"""
    return {key: str(value) for key, value in minutes.items()}


FORM = {
    "name": "Standard",
    "enabled": "on",
    "is_default": "on",
    "business_hours": "1",
    "warn_unit": "percent",
    "warn_value": "80",
}


# -- Settings ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_admin_creates_edits_and_deletes_a_policy(admin, workspace):
    client = signed_in(admin)
    page = client.get(url("sla-policies", workspace))
    assert page.status_code == 200 and "No SLA policies yet." in page.content.decode()
    channel = factories.api_channel(workspace, name="Shop")
    response = client.post(
        url("sla-policies", workspace),
        {
            **FORM,
            "channels": [channel.pk],
            **grid(t_4_first_response=15, t_4_resolution=240, t_0_first_response=60),
        },
        follow=True,
    )
    assert "SLA policy “Standard” created." in response.content.decode()
    policy = SlaPolicy.objects.get(workspace=workspace)
    assert policy.targets == {
        "0": {"first_response": 60},
        "4": {"first_response": 15, "resolution": 240},
    }
    assert policy.is_default and policy.business_hours and policy.enabled
    assert list(policy.channels.all()) == [channel]

    edit = client.get(url("sla-policy-edit", workspace, policy.pk))
    assert 'value="15"' in edit.content.decode()
    response = client.post(
        url("sla-policy-edit", workspace, policy.pk),
        {**FORM, "name": "Gold", "business_hours": "0", **grid(t_2_next_response=30)},
        follow=True,
    )
    assert "SLA policy “Gold” saved." in response.content.decode()
    policy.refresh_from_db()
    assert policy.name == "Gold" and not policy.business_hours
    assert policy.targets == {"2": {"next_response": 30}}
    assert list(policy.channels.all()) == []

    client.post(url("sla-policy-delete", workspace, policy.pk))
    assert not SlaPolicy.objects.filter(pk=policy.pk).exists()


@pytest.mark.django_db
def test_the_settings_form_refuses_bad_values(admin, workspace):
    client = signed_in(admin)
    response = client.post(
        url("sla-policies", workspace), {**FORM, "warn_value": "150", **grid(t_0_resolution=0)}
    )
    assert response.status_code == 400
    assert not SlaPolicy.objects.exists()
    sla.create_policy(workspace, name="Standard")
    response = client.post(url("sla-policies", workspace), {**FORM, "is_default": ""})
    assert response.status_code == 400
    assert "Another policy has that name." in response.content.decode()


@pytest.mark.django_db
def test_agents_may_not_manage_policies_and_other_workspaces_are_404(agent, admin, workspace):
    policy = sla.create_policy(workspace, name="Standard")
    assert signed_in(agent).get(url("sla-policies", workspace)).status_code == 403
    assert signed_in(agent).post(url("sla-policy-delete", workspace, policy.pk)).status_code == 403
    other = factories.workspace("bravo")
    theirs = sla.create_policy(other, name="Theirs")
    client = signed_in(admin)
    assert client.get(url("sla-policy-edit", workspace, theirs.pk)).status_code == 404
    assert client.post(url("sla-policy-delete", workspace, theirs.pk)).status_code == 404
    assert SlaPolicy.objects.filter(pk=theirs.pk).exists()


@pytest.mark.django_db
def test_one_default_policy_per_workspace(workspace):
    first = sla.create_policy(workspace, name="First", is_default=True)
    second = sla.create_policy(workspace, name="Second", is_default=True)
    first.refresh_from_db()
    assert not first.is_default and second.is_default


# -- Chips and sort ---------------------------------------------------------------------------
@pytest.fixture
def running(transactional_db, workspace, owner):
    """Three open conversations under a calendar-hours policy: one breached, one at risk, one
    with time to spare (the clock as it is now)."""
    sla.create_policy(
        workspace,
        name="Standard",
        business_hours=False,
        is_default=True,
        targets={
            "0": {"first_response": 600},
            "3": {"first_response": 100},
            "4": {"first_response": 10},
        },
    )
    channel = factories.api_channel(workspace, name="Shop")
    now = timezone.now()
    found = {}
    for name, priority in (("relaxed", Priority.NONE), ("risky", Priority.HIGH)):
        with clock.frozen(now - dt.timedelta(minutes=90)):
            result = factories.inbound(channel, "Hi", contact_id=name, name=name.title())
            conversation = Conversation.objects.get(pk=result.conversation_id)
            if priority:
                update_conversation(conversation, actor=None, priority=priority)
        found[name] = Conversation.objects.get(pk=conversation.pk)
    with clock.frozen(now - dt.timedelta(minutes=30)):
        result = factories.inbound(channel, "Help", contact_id="late", name="Late")
        update_conversation(
            Conversation.objects.get(pk=result.conversation_id),
            actor=None,
            priority=Priority.URGENT,
        )
    with clock.frozen(now):
        sla.check_due()
    found["late"] = Conversation.objects.get(pk=result.conversation_id)
    return found


def test_the_list_shows_coloured_chips_and_sorts_by_sla_due(running, owner):
    client = signed_in(owner)
    page = client.get("/w/acme/inbox/list/?view=all&sort=sla").content.decode()
    assert "SLA due" in page  # the sort is offered
    order = [page.index(f'id="c{running[name].number}"') for name in ("late", "risky", "relaxed")]
    assert order == sorted(order)
    assert page.count("chip sla-breached") == 1
    assert page.count("chip sla-at_risk") == 1
    assert page.count("chip sla-normal") == 1


def test_the_conversation_header_shows_the_due_times(running, owner):
    client = signed_in(owner)
    page = client.get(f"/w/acme/inbox/{running['late'].number}/pane/").content.decode()
    assert "chip sla-breached" in page and "First response" in page and "overdue" in page
    assert "Standard" in page  # the policy, in the title and the sidebar
    pending = running["relaxed"]
    update_conversation(pending, actor=None, status="pending")
    page = client.get(f"/w/acme/inbox/{pending.number}/pane/").content.decode()
    assert "SLA paused while pending" in page


# -- API --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_api_manages_policies_for_admins(workspace, owner, agent):
    api = factories.ApiClient(owner)
    channel = factories.api_channel(workspace, name="Shop")
    created = api.post(
        "/sla-policies",
        {
            "name": "Standard",
            "is_default": True,
            "targets": {"4": {"first_response": 15, "resolution": None}},
            "channel_ids": [channel.pk],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["targets"] == {"4": {"first_response": 15}}
    assert body["channel_ids"] == [channel.pk] and body["is_default"]
    assert [p["name"] for p in api.get("/sla-policies").json()] == ["Standard"]

    patched = api.patch(f"/sla-policies/{body['id']}", {"warn_unit": "minutes", "warn_value": 5})
    assert patched.status_code == 200 and patched.json()["warn_value"] == 5
    assert api.patch(f"/sla-policies/{body['id']}", {"name": None}).status_code == 400
    bad = api.post("/sla-policies", {"name": "Bad", "targets": {"9": {"resolution": 5}}})
    assert bad.status_code == 400

    as_agent = factories.ApiClient(agent)
    assert as_agent.get(f"/sla-policies/{body['id']}").status_code == 200
    assert as_agent.post("/sla-policies", {"name": "Mine"}).status_code == 403
    assert as_agent.patch(f"/sla-policies/{body['id']}", {"name": "X"}).status_code == 403
    assert as_agent.client.delete(f"/api/v1/sla-policies/{body['id']}").status_code == 403

    assert api.client.delete(f"/api/v1/sla-policies/{body['id']}").status_code == 204
    assert api.get("/sla-policies").json() == []


@pytest.mark.django_db
def test_another_workspaces_policy_is_404_in_the_api(workspace, owner):
    other = factories.workspace("bravo")
    theirs = sla.create_policy(other, name="Theirs")
    api = factories.ApiClient(owner)
    assert api.get(f"/sla-policies/{theirs.pk}").status_code == 404
    assert api.patch(f"/sla-policies/{theirs.pk}", {"name": "Mine"}).status_code == 404
    assert api.client.delete(f"/api/v1/sla-policies/{theirs.pk}").status_code == 404
    their_channel = factories.api_channel(other, name="Theirs")
    refused = api.post("/sla-policies", {"name": "X", "channel_ids": [their_channel.pk]})
    assert refused.status_code == 400
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


def test_the_conversation_api_shows_the_due_times(running, owner):
    api = factories.ApiClient(owner)
    body = api.get(f"/conversations/{running['relaxed'].pk}").json()
    assert body["sla_policy_id"] is not None
    assert body["first_response_due_at"] is not None
    assert body["next_response_due_at"] is None and body["sla_paused_at"] is None


def test_the_sla_chips_cost_no_query_per_row(running, workspace, django_assert_max_num_queries):
    client = signed_in(factories.owner_of(workspace))
    with django_assert_max_num_queries(12) as few:
        client.get("/w/acme/inbox/list/?view=all&sort=sla")
    baseline = len(few.captured_queries)
    channel = running["relaxed"].channel
    for i in range(6):
        factories.inbound(channel, "More", contact_id=f"more-{i}", name=f"More {i}")
    with django_assert_max_num_queries(baseline):
        page = client.get("/w/acme/inbox/list/?view=all&sort=sla").content.decode()
    assert page.count("chip sla-") == 9
