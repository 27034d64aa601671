"""Settings pages for auto-assignment: a team's mode, a member's capacity per kind of work."""

from __future__ import annotations

from loket.automation.assignment import set_availability
from loket.inbox.models import Conversation
from loket.inbox.services.channels import update_channel
from loket.tenancy.models import AutoAssign, Availability, Membership, Team
from loket.tenancy.services import create_team
from tests import factories
from tests.workspace_settings.conftest import signed_in, url


def test_admin_creates_a_team_with_balanced_assignment(workspace, admin, agent):
    response = signed_in(admin).post(
        url("teams", workspace),
        {
            "name": "Billing",
            "members": [agent.pk],
            "auto_assign": "balanced",
            "reassign_when_offline": "on",
        },
    )
    assert response.status_code == 302
    team = Team.objects.get(workspace=workspace, name="Billing")
    assert (team.auto_assign, team.reassign_when_offline) == (AutoAssign.BALANCED, True)
    page = signed_in(admin).get(url("teams", workspace)).content.decode()
    row = page[page.index(f'id="team-{team.pk}"') :]
    assert "Workload balancing" in row[: row.index("</tr>")]


def test_the_team_page_shows_and_changes_the_mode(workspace, admin, agent):
    team = create_team(workspace, "Billing", [agent])
    client = signed_in(admin)
    page = client.get(url("team-edit", workspace, team.pk)).content.decode()
    assert 'name="auto_assign"' in page and '<option value="off" selected>' in page
    assert 'name="reassign_when_offline"' in page
    client.post(
        url("team-edit", workspace, team.pk),
        {"name": "Billing", "members": [agent.pk], "auto_assign": "round_robin"},
    )
    team.refresh_from_db()
    assert (team.auto_assign, team.reassign_when_offline) == (AutoAssign.ROUND_ROBIN, False)
    page = client.get(url("team-edit", workspace, team.pk)).content.decode()
    assert '<option value="round_robin" selected>' in page
    # A post without the mode (an older form) keeps it.
    client.post(url("team-edit", workspace, team.pk), {"name": "Billing", "members": [agent.pk]})
    team.refresh_from_db()
    assert team.auto_assign == AutoAssign.ROUND_ROBIN


def test_switching_a_team_on_in_the_page_assigns_its_waiting_conversations(workspace, admin, agent):
    team = create_team(workspace, "Billing", [agent])
    channel = factories.api_channel(workspace)
    update_channel(channel, name=channel.name, default_team=team)
    waiting = factories.inbound(channel, "Hello").conversation_id
    set_availability(agent, Availability.ONLINE)
    assert Conversation.objects.get(pk=waiting).assignee is None
    signed_in(admin).post(
        url("team-edit", workspace, team.pk),
        {"name": "Billing", "members": [agent.pk], "auto_assign": "balanced"},
    )
    assert Conversation.objects.get(pk=waiting).assignee == agent


def test_an_unknown_mode_is_refused(workspace, admin):
    team = create_team(workspace, "Billing")
    response = signed_in(admin).post(
        url("team-edit", workspace, team.pk), {"name": "Billing", "auto_assign": "random"}
    )
    assert response.status_code == 400
    assert Team.objects.get(pk=team.pk).auto_assign == AutoAssign.OFF


def test_admin_sets_capacity_per_kind_of_work(workspace, admin, agent):
    client = signed_in(admin)
    response = client.post(
        url("member-update", workspace, agent.pk),
        {"role": "agent", "capacity": "12", "capacity_chat": "5", "capacity_email": "10"},
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.capacity, agent.capacities) == (12, {"chat": 5, "email": 10})
    page = client.get(url("members", workspace)).content.decode()
    row = page[page.index(f'id="member-{agent.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'name="capacity_chat" value="5"' in row and 'name="capacity_email" value="10"' in row
    # Emptied: no limit of its own.
    client.post(
        url("member-update", workspace, agent.pk),
        {"role": "agent", "capacity": "12", "capacity_chat": "", "capacity_email": "10"},
    )
    agent.refresh_from_db()
    assert agent.capacities == {"email": 10}
    # A post without the fields (an older form) keeps them.
    client.post(url("member-update", workspace, agent.pk), {"role": "agent", "capacity": "8"})
    agent.refresh_from_db()
    assert (agent.capacity, agent.capacities) == (8, {"email": 10})


def test_a_negative_capacity_per_kind_is_refused(workspace, admin, agent):
    response = signed_in(admin).post(
        url("member-update", workspace, agent.pk),
        {"role": "agent", "capacity": "12", "capacity_chat": "-1"},
        follow=True,
    )
    assert "was not changed" in response.content.decode()
    agent.refresh_from_db()
    assert (agent.capacity, agent.capacities) == (10, {})


def test_agents_cannot_reach_the_settings(workspace, agent):
    team = create_team(workspace, "Billing", [agent])
    client = signed_in(agent)
    response = client.post(
        url("team-edit", workspace, team.pk), {"name": "Billing", "auto_assign": "balanced"}
    )
    assert response.status_code == 403
    response = client.post(
        url("member-update", workspace, agent.pk),
        {"role": "agent", "capacity": "10", "capacity_chat": "99"},
    )
    assert response.status_code == 403
    assert Team.objects.get(pk=team.pk).auto_assign == AutoAssign.OFF
    assert Membership.objects.get(pk=agent.pk).capacities == {}


def test_another_workspaces_team_is_a_404(workspace, admin):
    other = create_team(factories.workspace("bravo"), "Theirs")
    response = signed_in(admin).post(
        url("team-edit", workspace, other.pk), {"name": "Theirs", "auto_assign": "balanced"}
    )
    assert response.status_code == 404
    assert Team.objects.get(pk=other.pk).auto_assign == AutoAssign.OFF
