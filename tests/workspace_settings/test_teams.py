"""Teams: create, rename, set members, delete."""

from __future__ import annotations

from loket.inbox.models import Channel
from loket.tenancy.models import Team
from loket.tenancy.services import create_team
from tests import factories
from tests.workspace_settings.conftest import url


def test_admin_creates_a_team_with_members(admin_client, workspace, admin, agent):
    response = admin_client.post(
        url("teams", workspace), {"name": " Billing ", "members": [agent.pk, admin.pk]}, follow=True
    )
    assert "Team “Billing” created." in response.content.decode()
    team = Team.objects.get(workspace=workspace, name="Billing")
    assert set(team.members.all()) == {agent, admin}
    html = admin_client.get(url("teams", workspace)).content.decode()
    assert "Abe Agent" in html[html.index(f'id="team-{team.pk}"') :]


def test_duplicate_team_name_is_refused_with_an_error(admin_client, workspace):
    create_team(workspace, "Billing")
    response = admin_client.post(url("teams", workspace), {"name": "billing"})
    assert response.status_code == 400
    assert "There is already a team called “billing”." in response.content.decode()
    assert Team.objects.filter(workspace=workspace).count() == 1


def test_admin_renames_a_team_and_replaces_its_members(admin_client, workspace, admin, agent):
    team = create_team(workspace, "Billing", [admin])
    page = admin_client.get(url("team-edit", workspace, team.pk)).content.decode()
    assert 'value="Billing"' in page
    assert f'value="{admin.pk}"' in page and f'value="{agent.pk}"' in page
    response = admin_client.post(
        url("team-edit", workspace, team.pk), {"name": "Payments", "members": [agent.pk]}
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.name == "Payments"
    assert list(team.members.all()) == [agent]
    # No members ticked: the team is emptied.
    admin_client.post(url("team-edit", workspace, team.pk), {"name": "Payments"})
    assert not team.members.exists()


def test_a_member_of_another_workspace_cannot_be_put_in_a_team(
    admin_client, workspace, agent, other_workspace
):
    team = create_team(workspace, "Billing", [agent])
    outsider = factories.agent(other_workspace)
    response = admin_client.post(
        url("team-edit", workspace, team.pk), {"name": "Billing", "members": [outsider.pk]}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert list(team.members.all()) == [agent]
    response = admin_client.post(url("teams", workspace), {"name": "New", "members": [outsider.pk]})
    assert response.status_code == 400
    assert not Team.objects.filter(name="New").exists()


def test_deleting_a_team_leaves_its_channels_without_one(admin_client, workspace):
    team = create_team(workspace, "Billing")
    channel = factories.api_channel(workspace)
    Channel.objects.filter(pk=channel.pk).update(default_team=team)
    response = admin_client.post(url("team-delete", workspace, team.pk), follow=True)
    assert "Team “Billing” deleted." in response.content.decode()
    assert not Team.objects.filter(pk=team.pk).exists()
    channel.refresh_from_db()
    assert channel.default_team_id is None
