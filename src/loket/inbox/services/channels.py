"""Adding and changing channels. The connector is passed in by the caller (API, admin UI, demo),
so the core stays unaware of providers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from loket.inbox.models import Channel
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
    return channel, setup.shown_once
