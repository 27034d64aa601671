"""Scheduled reports over the API: ``/api/v1/reports/schedules`` (loket.reports.schedules has
the rules; docs/reports.md, Scheduled reports). For tokens of supervisors, admins and owners
(403 otherwise); another workspace's schedule is a 404, and recipients must be this
workspace's supervisors, admins or owners (400 otherwise)."""

from __future__ import annotations

import datetime as dt

from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.reports import schedules
from loket.reports.models import ReportSchedule, ScheduleReport
from loket.tenancy.services import NotAllowed

router = Router(tags=["reports"])


class ScheduleOut(Schema):
    id: int
    name: str
    frequency: str  # daily | weekly
    weekday: int | None  # weekly: 1 (Monday) .. 7 (Sunday)
    hour: int  # 0-23 in the workspace's time zone
    report: str  # overview | agents
    channel_id: int | None
    team_id: int | None
    priority: int | None
    business_time: bool
    recipient_ids: list[int]
    enabled: bool
    created_by_id: int | None
    last_period_sent: dt.date | None  # the first day of the last period e-mailed
    last_sent_at: dt.datetime | None
    last_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ScheduleIn(Schema):
    name: str
    frequency: str
    weekday: int | None = None
    hour: int = 8
    report: str = ScheduleReport.OVERVIEW
    channel_id: int | None = None
    team_id: int | None = None
    priority: int | None = None
    business_time: bool = False
    recipient_ids: list[int]
    enabled: bool = True


class SchedulePatch(Schema):
    name: str | None = None
    frequency: str | None = None
    weekday: int | None = None
    hour: int | None = None
    report: str | None = None
    channel_id: int | None = None
    team_id: int | None = None
    priority: int | None = None
    business_time: bool | None = None
    recipient_ids: list[int] | None = None
    enabled: bool | None = None


# Fields a PATCH may set to null (clearing a filter or the weekday).
NULLABLE = {"weekday", "channel_id", "team_id", "priority"}


def schedule_out(schedule: ReportSchedule) -> dict:
    return {
        "id": schedule.pk,
        **schedules.values_of(schedule),
        "created_by_id": schedule.created_by_id,
        "last_period_sent": schedule.last_period_sent,
        "last_sent_at": schedule.last_sent_at,
        "last_error": schedule.last_error,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    field = getattr(exc, "field", None)
    return ApiError(400, "invalid", f"{field}: {exc}" if field else str(exc))


def _reader(request) -> None:
    if not request.membership.reads_reports:
        raise ApiError(403, "forbidden", "reports are for supervisors, admins and owners")


@router.get("/reports/schedules", response=list[ScheduleOut])
def list_schedules(request):
    _reader(request)
    return [schedule_out(s) for s in schedules.schedules(request.membership.workspace_id)]


@router.post("/reports/schedules", response={201: ScheduleOut})
def create_schedule(request, data: ScheduleIn):
    _reader(request)
    member = request.membership
    try:
        schedule = schedules.create_schedule(member.workspace, actor=member, **data.dict())
    except (schedules.InvalidSchedule, NotAllowed) as exc:
        raise _refused(exc) from exc
    return Status(201, schedule_out(schedules.get_schedule(member, schedule.pk)))


@router.get("/reports/schedules/{int:schedule_id}", response=ScheduleOut)
def show_schedule(request, schedule_id: int):
    _reader(request)
    return schedule_out(schedules.get_schedule(request.membership, schedule_id))


@router.patch("/reports/schedules/{int:schedule_id}", response=ScheduleOut)
def update_schedule(request, schedule_id: int, data: SchedulePatch):
    _reader(request)
    member = request.membership
    schedule = schedules.get_schedule(member, schedule_id)
    given = data.dict(exclude_unset=True)
    for name, value in given.items():
        if value is None and name not in NULLABLE:
            raise ApiError(400, "invalid", f"{name} cannot be null")
    try:
        schedules.update_schedule(schedule, actor=member, **given)
    except (schedules.InvalidSchedule, NotAllowed) as exc:
        raise _refused(exc) from exc
    return schedule_out(schedules.get_schedule(member, schedule_id))


@router.delete("/reports/schedules/{int:schedule_id}", response={204: None})
def delete_schedule(request, schedule_id: int):
    _reader(request)
    member = request.membership
    schedules.delete_schedule(schedules.get_schedule(member, schedule_id), actor=member)
    return Status(204, None)
