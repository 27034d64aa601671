"""Adding and changing channels. The connector is passed in by the caller (API, admin UI, demo),
so the core stays unaware of providers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from loket.inbox.models import Channel
from loket.tenancy import hours
from loket.tenancy.models import Team, Workspace


def create_channel(
    workspace: Workspace,
    connector: Any,
    *,
    name: str,
    config: dict[str, Any],
    default_team: Team | None = None,
) -> tuple[Channel, dict[str, Any]]:
    """Returns the channel and the values shown once to the admin (e.g. a signing secret)."""
    name = (name or "").strip()
    if not name:
        raise ValueError("a channel needs a name")
    setup = connector.setup(config)
    with transaction.atomic():
        channel = Channel.objects.create(
            workspace=workspace,
            kind=connector.key,
            name=name[:200],
            settings=setup.settings,
            secrets=setup.secrets,
            default_team=default_team,
        )
    # Outside the transaction: this may call the provider (e.g. register the webhook), and
    # the provider needs the stored channel to exist. A refusal removes the channel again.
    try:
        connector.channel_saved(channel)
    except Exception:
        channel.delete()
        raise
    return channel, setup.shown_once


def update_channel(channel: Channel, *, name: str, default_team: Team | None) -> Channel:
    name = (name or "").strip()
    if not name:
        raise ValueError("a channel needs a name")
    if default_team is not None and default_team.workspace_id != channel.workspace_id:
        raise ValueError("that team belongs to another workspace")
    channel.name = name[:200]
    channel.default_team = default_team
    channel.save(update_fields=["name", "default_team"])
    return channel


def reconfigure_channel(channel: Channel, connector: Any, config: dict[str, Any]) -> Channel:
    """Change a channel's provider settings through its connector (which validates them and
    keeps stored secrets that ``config`` leaves blank). Raises the connector's InvalidConfig."""
    setup = connector.setup(config, existing=channel)
    before = (channel.settings, channel.secrets)
    channel.settings = setup.settings
    channel.secrets = setup.secrets
    channel.save(update_fields=["settings", "secrets"])
    try:
        connector.channel_saved(channel)
    except Exception:  # the provider refused the new settings: keep the working ones
        channel.settings, channel.secrets = before
        channel.save(update_fields=["settings", "secrets"])
        raise
    return channel


def set_channel_active(channel: Channel, active: bool) -> Channel:
    """An inactive channel's webhooks answer 404; the webhook receivers cache channels for a few
    seconds, so the change reaches them shortly after."""
    if channel.is_active != active:
        channel.is_active = active
        channel.save(update_fields=["is_active"])
    return channel


def set_channel_hours(channel: Channel, value: dict[str, Any] | None) -> Channel:
    """Give the channel business hours of its own (None: the workspace's again). Raises
    loket.tenancy.hours.InvalidHours saying what to fix."""
    channel.business_hours = hours.clean_channel_hours(value)
    channel.save(update_fields=["business_hours"])
    return channel
