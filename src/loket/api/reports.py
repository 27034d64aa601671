"""The reports' figures over the API (``/api/v1/reports/…``), the same numbers the report pages
show (loket.reports.queries; definitions in docs/reports.md). For tokens of supervisors, admins
and owners (403 otherwise). Days are the workspace's (its time zone), ``from``/``to`` included,
at most a year; filters by an id the workspace does not have match nothing."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Query, Router, Schema

from loket.api.main import ApiError
from loket.reports import queries
from loket.reports.queries import Filters
from loket.web.workspace import workspace_zone

router = Router(tags=["reports"])
MAX_DAYS = 366


class ReportQuery(Schema):
    start: dt.date | None = Field(None, alias="from")  # default: 29 days before ``to``
    end: dt.date | None = Field(None, alias="to")  # default: today
    channel_id: int | None = None
    team_id: int | None = None
    member_id: int | None = None
    priority: int | None = None


class Figures(Schema):
    created: int
    resolved: int
    reopened: int
    first_responses: int
    next_responses: int
    # Averages in seconds (null: no sample), calendar and business time.
    first_response_seconds: float | None
    first_response_business_seconds: float | None
    next_response_seconds: float | None
    next_response_business_seconds: float | None
    resolution_seconds: float | None
    resolution_business_seconds: float | None
    replies_per_resolution: float | None
    bot_resolved_share: float | None  # 0..1
    handoff_share: float | None
    ratings: int  # CSAT answers (counted for the assignee)
    csat_average: float | None  # 1..5
    csat_score: float | None  # share of ratings of 4 or 5, 0..1


class Period(Figures):
    day: dt.date  # the day, or the Monday of the week


class OverviewOut(Schema):
    start: dt.date = Field(..., alias="from")
    end: dt.date = Field(..., alias="to")
    totals: Figures
    previous: Figures  # the same number of days just before
    by: str  # day | week
    series: list[Period]


class AgentFigures(Figures):
    member_id: int | None  # null: unassigned conversations' resolutions


class AgentsOut(Schema):
    items: list[AgentFigures]


class HoursOut(Schema):
    # 7 rows (Monday first) of 24 local hours: conversations that came in (new or reopened).
    weekdays: list[list[int]]


def _range(request, query: ReportQuery) -> tuple[dt.date, dt.date, Filters]:
    if not request.membership.reads_reports:
        raise ApiError(403, "forbidden", "reports are for supervisors, admins and owners")
    today = dt.datetime.now(workspace_zone(request.membership.workspace)).date()
    end = query.end or today
    start = query.start or end - dt.timedelta(days=29)
    if start > end:
        raise ApiError(400, "invalid", "from is after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(400, "invalid", f"at most {MAX_DAYS} days at a time")
    filters = Filters(
        channel_id=query.channel_id,
        team_id=query.team_id,
        member_id=query.member_id,
        priority=query.priority,
    )
    return start, end, filters


@router.get("/reports/overview", response=OverviewOut, by_alias=True)
def overview(request, query: Query[ReportQuery]):
    """The range's figures, the previous period's, and a series per day (per week above 92
    days)."""
    start, end, filters = _range(request, query)
    workspace_id = request.membership.workspace_id
    now, before, _span = queries.compare(workspace_id, start, end, filters)
    by = "week" if (end - start).days > 92 else "day"
    return {
        "from": start,
        "to": end,
        "totals": now,
        "previous": before,
        "by": by,
        "series": [
            {"day": day, **figures}
            for day, figures in queries.series(workspace_id, start, end, filters, by=by)
        ],
    }


@router.get("/reports/agents", response=AgentsOut)
def agents(request, query: Query[ReportQuery]):
    """The range's figures per member: responses count for who replied, the rest for the
    conversation's assignee."""
    start, end, filters = _range(request, query)
    found = queries.by_dimension(request.membership.workspace_id, start, end, "member_id", filters)
    return {"items": [{"member_id": member, **figures} for member, figures in found.items()]}


@router.get("/reports/busiest-hours", response=HoursOut)
def busiest_hours(request, query: Query[ReportQuery]):
    start, end, filters = _range(request, query)
    return {"weekdays": queries.heatmap(request.membership.workspace_id, start, end, filters)}
