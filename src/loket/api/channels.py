from __future__ import annotations

from typing import Any

from django.http import Http404
from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.connectors.base import InvalidConfig
from loket.connectors.registry import REGISTRY, webhook_url
from loket.inbox import selectors
from loket.inbox.models import Channel

router = Router(tags=["channels"])


class ChannelIn(Schema):
    kind: str
    name: str
    config: dict[str, Any] = {}
    default_team_id: int | None = None


class ChannelOut(Schema):
    id: int
    uuid: str
    kind: str
    name: str
    settings: dict[str, Any]
    webhook_url: str
    is_active: bool
    default_team_id: int | None
    capabilities: dict[str, Any]


class ChannelCreatedOut(ChannelOut):
    secret: str | None = None


def channel_out(channel: Channel) -> dict[str, Any]:
    connector = REGISTRY[channel.kind]
    caps = connector.capabilities
    return {
        "id": channel.pk,
        "uuid": str(channel.uuid),
        "kind": channel.kind,
        "name": channel.name,
        "settings": connector.public_settings(channel),
        "webhook_url": webhook_url(channel),
        "is_active": channel.is_active,
        "default_team_id": channel.default_team_id,
        "capabilities": caps.__dict__,
    }


@router.get("", response=list[ChannelOut])
def list_channels(request):
    return [channel_out(c) for c in selectors.channels(request.membership)]


@router.post("", response={201: ChannelCreatedOut})
def create_channel(request, data: ChannelIn):
    from loket.inbox.services.channels import create_channel as create

    member = request.membership
    if not member.is_admin:
        raise ApiError(403, "forbidden", "only owners and admins can add channels")
    if data.kind not in REGISTRY:
        raise ApiError(400, "invalid", f"unknown kind {data.kind!r}; one of: {', '.join(REGISTRY)}")
    try:
        team = selectors.team(member, data.default_team_id) if data.default_team_id else None
    except Http404 as exc:  # a team id in the body is a bad request, like assignee_id in a PATCH
        raise ApiError(400, "invalid", str(exc)) from exc
    try:
        channel, shown_once = create(
            member.workspace,
            REGISTRY[data.kind],
            name=data.name,
            config=data.config,
            default_team=team,
        )
    except InvalidConfig as exc:
        raise ApiError(400, "invalid_config", str(exc)) from exc
    except ValueError as exc:  # e.g. a blank name
        raise ApiError(400, "invalid", str(exc)) from exc
    return Status(201, {**channel_out(channel), **shown_once})


@router.get("/{int:channel_id}", response=ChannelOut)
def show_channel(request, channel_id: int):
    return channel_out(selectors.channel(request.membership, channel_id))
