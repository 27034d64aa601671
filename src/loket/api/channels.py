from __future__ import annotations

from typing import Any

from django.http import Http404
from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.connectors.base import InvalidConfig
from loket.connectors.registry import REGISTRY, webhook_url
from loket.inbox import selectors
from loket.inbox.models import Channel
from loket.reports import csat

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
    # Hours of its own ({"hours", "holidays", "time_zone"}); null: the workspace's.
    business_hours: dict[str, Any] | None = None
    # The satisfaction survey after resolve ({"enabled", "delay_minutes"}); null: the live
    # chat, whose widget asks for a rating itself.
    csat: dict[str, Any] | None = None


class ChannelCreatedOut(ChannelOut):
    # Values shown this once (a signing secret, a generated verify token), never again.
    shown_once: dict[str, Any] = {}
    secret: str | None = None


class SetupFieldOut(Schema):
    name: str
    label: str
    help: str
    secret: bool
    required: bool
    choices: list[list[str]]


class ChannelKindOut(Schema):
    kind: str
    label: str
    setup_fields: list[SetupFieldOut]
    capabilities: dict[str, Any]


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
        "business_hours": channel.business_hours,
        "csat": csat.setting_of(channel) if csat.applies_to(channel) else None,
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
    return Status(201, {**channel_out(channel), **shown_once, "shown_once": shown_once})


@router.get("/kinds", response=list[ChannelKindOut])
def channel_kinds(request):
    """The kinds of channel this Loket can connect, with what their ``config`` asks for (kinds
    without setup fields take the keys their connector's README documents)."""
    return [
        {
            "kind": connector.key,
            "label": str(connector.label),
            "setup_fields": [
                {
                    "name": f.name,
                    "label": str(f.label),
                    "help": str(f.help),
                    "secret": f.secret,
                    "required": f.required,
                    "choices": [[value, str(label)] for value, label in f.choices],
                }
                for f in connector.setup_fields
            ],
            "capabilities": connector.capabilities.__dict__,
        }
        for connector in REGISTRY.values()
    ]


@router.get("/{int:channel_id}", response=ChannelOut)
def show_channel(request, channel_id: int):
    return channel_out(selectors.channel(request.membership, channel_id))


class ChannelPatch(Schema):
    name: str | None = None
    config: dict[str, Any] | None = None
    default_team_id: int | None = None
    business_hours: dict[str, Any] | None = None
    csat: dict[str, Any] | None = None  # {"enabled": bool, "delay_minutes": 0..10080}


class ConnectionCheckOut(Schema):
    ok: bool
    error: str = ""


def _admin(request):
    member = request.membership
    if not member.is_admin:
        raise ApiError(403, "forbidden", "only owners and admins can change channels")
    return member


@router.patch("/{int:channel_id}", response=ChannelOut)
def update_channel(request, channel_id: int, data: ChannelPatch):
    """Rename, set the default team, or change the provider settings (``config``: only the
    keys given change; a blank secret keeps the stored one), the business hours, or the
    satisfaction survey (``csat``: ``{"enabled": bool, "delay_minutes": 0..10080}``)."""
    from loket.inbox.services.channels import reconfigure_channel, set_channel_hours
    from loket.inbox.services.channels import update_channel as update

    member = _admin(request)
    channel = selectors.channel(member, channel_id)
    fields = data.model_dump(exclude_unset=True)
    try:
        if "csat" in fields:  # checked before anything changes
            csat.clean_setting(data.csat)
        if "name" in fields or "default_team_id" in fields:
            team_id = fields.get("default_team_id", channel.default_team_id)
            team = selectors.team(member, team_id) if team_id else None
            update(channel, name=fields.get("name") or channel.name, default_team=team)
        if data.config is not None:
            survey = (channel.settings or {}).get("csat")
            reconfigure_channel(channel, REGISTRY[channel.kind], data.config)
            if survey is not None and "csat" not in channel.settings:  # kept, not provider's
                channel.settings = {**channel.settings, "csat": survey}
                channel.save(update_fields=["settings"])
        if "csat" in fields:
            csat.set_setting(channel, data.csat)
        if "business_hours" in fields:
            set_channel_hours(channel, data.business_hours)
    except Http404 as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    except InvalidConfig as exc:
        raise ApiError(400, "invalid_config", str(exc)) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    return channel_out(channel)


@router.post("/{int:channel_id}/check", response=ConnectionCheckOut)
def check_channel(request, channel_id: int):
    """Try the channel's connection now (e.g. log in to the IMAP and SMTP servers)."""
    channel = selectors.channel(_admin(request), channel_id)
    try:
        REGISTRY[channel.kind].check_connection(channel)
    except InvalidConfig as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "error": ""}
