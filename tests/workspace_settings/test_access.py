"""Who may open the settings pages: owners and admins; agents get 403, outsiders 404, and no id
of another workspace reaches its row."""

from __future__ import annotations

import pytest
from django.test import Client

from loket.inbox.models import Channel, Label
from loket.inbox.services.labels import create_label
from loket.tenancy.models import ApiToken, Membership, Team
from loket.tenancy.services import create_api_token, create_team
from tests import factories
from tests.workspace_settings.conftest import signed_in, url

PAGES = ["index", "members", "teams", "labels", "channels", "tokens"]


@pytest.mark.parametrize("page", PAGES)
def test_owner_and_admin_open_every_page_with_the_settings_navigation(
    owner_client, admin_client, workspace, page
):
    for client in (owner_client, admin_client):
        response = client.get(url(page, workspace))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'aria-label="Settings"' in html
        for other in PAGES:
            assert f'href="{url(other, workspace)}"' in html
        assert f'<a href="{url(page, workspace)}" aria-current="page">' in html


@pytest.mark.parametrize("page", PAGES)
def test_an_agent_is_refused(agent_client, workspace, page):
    assert agent_client.get(url(page, workspace)).status_code == 403
    assert agent_client.post(url(page, workspace), {"name": "x"}).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_someone_outside_the_workspace_gets_404_and_anonymous_is_sent_to_sign_in(
    workspace, other_workspace, page
):
    outsider = signed_in(factories.owner_of(other_workspace))
    assert outsider.get(url(page, workspace)).status_code == 404
    response = Client().get(url(page, workspace))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_agent_cannot_change_anything(agent_client, workspace, owner, agent):
    team = create_team(workspace, "Support")
    label = create_label(workspace, name="Billing", color="#123456")
    channel = factories.api_channel(workspace)
    posts = [
        (url("member-update", workspace, agent.pk), {"role": "owner", "capacity": 99}),
        (url("member-remove", workspace, owner.pk), {}),
        (url("team-edit", workspace, team.pk), {"name": "Renamed"}),
        (url("team-delete", workspace, team.pk), {}),
        (url("label-update", workspace, label.pk), {"name": "Renamed", "color": "#000000"}),
        (url("label-delete", workspace, label.pk), {}),
        (url("channel-edit", workspace, channel.pk), {"name": "Renamed"}),
        (url("channel-active", workspace, channel.pk), {"active": "0"}),
    ]
    for path, data in posts:
        assert agent_client.post(path, data).status_code == 403, path
    agent.refresh_from_db()
    assert agent.role == "agent" and agent.capacity == 10
    assert Membership.objects.filter(pk=owner.pk).exists()
    assert Team.objects.get(pk=team.pk).name == "Support"
    assert Label.objects.get(pk=label.pk).name == "Billing"
    channel.refresh_from_db()
    assert channel.is_active and channel.name == "API"


def test_ids_of_another_workspace_are_404_and_leave_its_rows_alone(
    owner_client, workspace, other_workspace
):
    other_owner = factories.owner_of(other_workspace)
    other_agent = factories.agent(other_workspace)
    team = create_team(other_workspace, "Bravo team", [other_agent])
    label = create_label(other_workspace, name="Bravo label", color="#123456")
    channel = factories.api_channel(other_workspace, name="Bravo channel")
    token, _raw = create_api_token(other_owner)
    requests = [
        ("post", url("member-update", workspace, other_agent.pk), {"role": "admin", "capacity": 1}),
        ("post", url("member-remove", workspace, other_agent.pk), {}),
        ("get", url("team-edit", workspace, team.pk), None),
        ("post", url("team-edit", workspace, team.pk), {"name": "Taken over"}),
        ("post", url("team-delete", workspace, team.pk), {}),
        ("post", url("label-update", workspace, label.pk), {"name": "Taken", "color": "#000000"}),
        ("post", url("label-delete", workspace, label.pk), {}),
        ("get", url("channel-edit", workspace, channel.pk), None),
        ("post", url("channel-edit", workspace, channel.pk), {"name": "Taken over"}),
        ("post", url("channel-active", workspace, channel.pk), {"active": "0"}),
        ("post", url("token-revoke", workspace, token.pk), {}),
    ]
    for method, path, data in requests:
        response = (
            getattr(owner_client, method)(path, data)
            if data
            else getattr(owner_client, method)(path)
        )
        assert response.status_code == 404, (method, path)
    other_agent.refresh_from_db()
    assert other_agent.role == "agent" and other_agent.capacity == 10
    assert Team.objects.get(pk=team.pk).name == "Bravo team"
    assert list(Team.objects.get(pk=team.pk).members.all()) == [other_agent]
    assert Label.objects.get(pk=label.pk).name == "Bravo label"
    assert Channel.objects.get(pk=channel.pk).is_active
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_pages_do_not_list_another_workspaces_rows(owner_client, workspace, other_workspace):
    factories.agent(other_workspace, "bravo-agent@bravo.example")
    create_team(other_workspace, "Bravo team")
    create_label(other_workspace, name="Bravo label", color="#123456")
    factories.api_channel(other_workspace, name="Bravo channel")
    for page in PAGES:
        html = owner_client.get(url(page, workspace)).content.decode()
        assert "bravo" not in html.lower(), page
