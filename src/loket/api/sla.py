"""SLA policies over the API: ``/api/v1/sla-policies`` (loket.automation.sla has the rules).
Reading is for every member, changing for admins; another workspace's policy is a 404."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.automation import sla
from loket.automation.models import SlaPolicy, SlaWarnUnit
from loket.inbox import selectors
from loket.tenancy.services import NotAllowed

router = Router(tags=["sla-policies"])


class SlaPolicyOut(Schema):
    id: int
    name: str
    enabled: bool
    is_default: bool
    business_hours: bool
    # {"<priority 0-4>": {"first_response": minutes, "next_response": …, "resolution": …}}
    targets: dict[str, dict[str, int]]
    warn_unit: str  # percent | minutes
    warn_value: int
    channel_ids: list[int]
    created_at: dt.datetime
    updated_at: dt.datetime


class SlaPolicyIn(Schema):
    name: str
    enabled: bool = True
    is_default: bool = False
    business_hours: bool = True
    targets: dict[str, dict[str, int | None]] = {}
    warn_unit: str = SlaWarnUnit.PERCENT
    warn_value: int = 80
    channel_ids: list[int] = []


class SlaPolicyPatch(Schema):
    name: str | None = None
    enabled: bool | None = None
    is_default: bool | None = None
    business_hours: bool | None = None
    targets: dict[str, dict[str, int | None]] | None = None
    warn_unit: str | None = None
    warn_value: int | None = None
    channel_ids: list[int] | None = None


def policy_out(policy: SlaPolicy) -> dict:
    return {
        "id": policy.pk,
        "name": policy.name,
        "enabled": policy.enabled,
        "is_default": policy.is_default,
        "business_hours": policy.business_hours,
        "targets": policy.targets,
        "warn_unit": policy.warn_unit,
        "warn_value": policy.warn_value,
        "channel_ids": sorted(channel.pk for channel in policy.channels.all()),
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    field = getattr(exc, "field", None)
    return ApiError(400, "invalid", f"{field}: {exc}" if field else str(exc))


def _fields(request, given: dict) -> dict:
    if "channel_ids" in given:
        try:
            given["channels"] = [
                selectors.channel(request.membership, pk) for pk in given.pop("channel_ids")
            ]
        except Http404 as exc:
            raise ApiError(400, "invalid", f"channel_ids: {exc}") from exc
    return given


@router.get("", response=list[SlaPolicyOut])
def list_policies(request):
    return [policy_out(policy) for policy in sla.policies(request.membership.workspace_id)]


@router.post("", response={201: SlaPolicyOut})
def create_policy(request, data: SlaPolicyIn):
    member = request.membership
    try:
        policy = sla.create_policy(member.workspace, actor=member, **_fields(request, data.dict()))
    except (sla.InvalidPolicy, NotAllowed) as exc:
        raise _refused(exc) from exc
    return Status(201, policy_out(sla.get_policy(member, policy.pk)))


@router.get("/{int:policy_id}", response=SlaPolicyOut)
def show_policy(request, policy_id: int):
    return policy_out(sla.get_policy(request.membership, policy_id))


@router.patch("/{int:policy_id}", response=SlaPolicyOut)
def update_policy(request, policy_id: int, data: SlaPolicyPatch):
    member = request.membership
    policy = sla.get_policy(member, policy_id)
    given = data.dict(exclude_unset=True)
    for name, value in given.items():
        if value is None:
            raise ApiError(400, "invalid", f"{name} cannot be null")
    try:
        sla.update_policy(policy, actor=member, **_fields(request, given))
    except (sla.InvalidPolicy, NotAllowed) as exc:
        raise _refused(exc) from exc
    return policy_out(sla.get_policy(member, policy_id))


@router.delete("/{int:policy_id}", response={204: None})
def delete_policy(request, policy_id: int):
    member = request.membership
    policy = sla.get_policy(member, policy_id)
    try:
        sla.delete_policy(policy, actor=member)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)
