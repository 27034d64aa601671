"""Changing an existing channel's name, default team and active state.

These are service functions (no request) that belong in loket.inbox.services.channels; they
live here until that module's owner takes them over, and callers should import them from there
once they move.
"""

from __future__ import annotations

from loket.inbox.models import Channel
from loket.tenancy.models import Team


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


def set_channel_active(channel: Channel, active: bool) -> Channel:
    """An inactive channel's webhooks answer 404; the webhook receivers cache channels for a few
    seconds, so the change reaches them shortly after."""
    if channel.is_active != active:
        channel.is_active = active
        channel.save(update_fields=["is_active"])
    return channel
