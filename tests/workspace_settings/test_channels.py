"""Channels: list with webhook URLs, rename, default team, (de)activate, create an API channel
whose signing secret is shown once."""

from __future__ import annotations

import re

from loket.connectors.registry import REGISTRY
from loket.inbox.models import Channel, Message
from loket.tenancy.services import create_team
from tests import factories
from tests.workspace_settings.conftest import url

MESSAGE = {"id": "m-1", "contact": {"id": "cust-1", "name": "Emily"}, "text": "Where is it?"}


def test_list_shows_kind_state_created_date_default_team_and_webhook_url(
    admin_client, workspace, settings
):
    settings.LOKET_PUBLIC_URL = "https://help.example.com"
    team = create_team(workspace, "Webshop team")
    channel = factories.api_channel(workspace, name="Webshop")
    Channel.objects.filter(pk=channel.pk).update(default_team=team)
    html = admin_client.get(url("channels", workspace)).content.decode()
    row = html[html.index(f'id="channel-{channel.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Webshop" in row and "API channel" in row and "Active" in row
    assert f"https://help.example.com/hooks/api/{channel.uuid}/" in row
    assert "Webshop team" in row
    assert f'datetime="{channel.created_at.isoformat()}' in row
    assert channel.secrets["secret"] not in html
    with_forms = [key for key, c in REGISTRY.items() if c.setup_fields]
    for kind in with_forms:  # every connector that declares setup fields gets a form
        assert f'id="new-{kind}-channel"' in html


def test_admin_creates_an_api_channel_and_sees_its_secret_once(
    admin_client, workspace, post_webhook, settings
):
    settings.LOKET_PUBLIC_URL = "https://help.example.com"
    team = create_team(workspace, "Shop")
    response = admin_client.post(
        url("channels", workspace),
        {"name": "Webshop", "outbound_url": "https://shop.example/loket", "default_team": team.pk},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = re.search(r'id="signing-secret"[^>]*>(whsec_[\w-]+)<', html).group(1)
    channel = Channel.objects.get(workspace=workspace, name="Webshop")
    assert (channel.kind, channel.default_team, channel.settings) == (
        "api",
        team,
        {"outbound_url": "https://shop.example/loket"},
    )
    assert f"https://help.example.com/hooks/api/{channel.uuid}/" in html
    # The secret is the channel's and works for its webhook ...
    assert post_webhook(channel, MESSAGE, secret=secret).status_code == 200
    assert Message.objects.filter(channel=channel, text="Where is it?").exists()
    # ... and it is not shown again.
    assert secret not in admin_client.get(url("channels", workspace)).content.decode()
    assert (
        secret not in admin_client.get(url("channel-edit", workspace, channel.pk)).content.decode()
    )


def test_invalid_api_channel_input_is_refused_with_errors(admin_client, workspace, other_workspace):
    foreign_team = create_team(other_workspace, "Bravo team")
    response = admin_client.post(
        url("channels", workspace),
        {"name": "", "outbound_url": "ftp://shop.example", "default_team": foreign_team.pk},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert html.count('class="errorlist"') >= 3
    assert not Channel.objects.filter(workspace=workspace).exists()


def test_admin_renames_a_channel_and_sets_its_default_team(admin_client, workspace):
    channel = factories.api_channel(workspace)
    team = create_team(workspace, "Support")
    response = admin_client.post(
        url("channel-edit", workspace, channel.pk), {"name": "Shop chat", "default_team": team.pk}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.default_team) == ("Shop chat", team)
    admin_client.post(url("channel-edit", workspace, channel.pk), {"name": "Shop chat"})
    channel.refresh_from_db()
    assert channel.default_team is None


def test_a_team_of_another_workspace_cannot_be_a_default_team(
    admin_client, workspace, other_workspace
):
    channel = factories.api_channel(workspace)
    foreign_team = create_team(other_workspace, "Bravo team")
    response = admin_client.post(
        url("channel-edit", workspace, channel.pk), {"name": "X", "default_team": foreign_team.pk}
    )
    assert response.status_code == 400
    channel.refresh_from_db()
    assert (channel.name, channel.default_team_id) == ("API", None)


def test_an_inactive_channel_refuses_its_webhooks_until_activated_again(
    admin_client, workspace, post_webhook
):
    channel = factories.api_channel(workspace)
    response = admin_client.post(
        url("channel-active", workspace, channel.pk), {"active": "0"}, follow=True
    )
    assert "no longer accepts messages" in response.content.decode()
    channel.refresh_from_db()
    assert channel.is_active is False
    assert "Inactive" in admin_client.get(url("channels", workspace)).content.decode()
    assert post_webhook(channel, MESSAGE).status_code == 404
    admin_client.post(url("channel-active", workspace, channel.pk), {"active": "1"})
    channel.refresh_from_db()
    assert channel.is_active is True
