"""The reports' figures over the API (``/api/v1/reports/…``), the same numbers the report pages
show (loket.reports.queries; definitions in docs/reports.md). For tokens of supervisors, admins
and owners (403 otherwise). Days are the workspace's (its time zone), ``from``/``to`` included,
at most a year; filters by an id the workspace does not have match nothing."""

from __future__ import annotations

import datetime as dt

from django.db.models import F
from ninja import Field, Query, Router, Schema

from loket.api.main import ApiError
from loket.reports import queries, sla_bots
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
    label_id: int | None = None  # conversations carrying this label now


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
    online_seconds: float | None  # time online on these days (null for the unassigned row)


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
        label_id=query.label_id,
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
    workspace = request.membership.workspace
    found = queries.by_agent(workspace.pk, start, end, workspace_zone(workspace), filters)
    return {"items": [{"member_id": member, **figures} for member, figures in found.items()]}


@router.get("/reports/busiest-hours", response=HoursOut)
def busiest_hours(request, query: Query[ReportQuery]):
    start, end, filters = _range(request, query)
    return {"weekdays": queries.heatmap(request.membership.workspace_id, start, end, filters)}


class ChannelFigures(Figures):
    channel_id: int | None


class TeamFigures(Figures):
    team_id: int | None  # null: conversations without a team


class LabelFigures(Figures):
    label_id: int | None  # null: conversations without a label


class ChannelsOut(Schema):
    items: list[ChannelFigures]


class TeamsOut(Schema):
    items: list[TeamFigures]


class LabelsOut(Schema):
    items: list[LabelFigures]


@router.get("/reports/channels", response=ChannelsOut)
def channels(request, query: Query[ReportQuery]):
    """The range's figures per channel (the channel a conversation is on)."""
    start, end, filters = _range(request, query)
    found = queries.by_dimension(request.membership.workspace_id, start, end, "channel_id", filters)
    return {"items": [{"channel_id": key, **figures} for key, figures in found.items()]}


@router.get("/reports/teams", response=TeamsOut)
def teams(request, query: Query[ReportQuery]):
    """The range's figures per team (the team a conversation has now)."""
    start, end, filters = _range(request, query)
    found = queries.by_dimension(request.membership.workspace_id, start, end, "team_id", filters)
    return {"items": [{"team_id": key, **figures} for key, figures in found.items()]}


@router.get("/reports/labels", response=LabelsOut)
def labels(request, query: Query[ReportQuery]):
    """The range's figures per label the conversations carry now (a conversation with two labels
    counts in both)."""
    start, end, filters = _range(request, query)
    found = queries.by_label(request.membership.workspace_id, start, end, filters)
    return {"items": [{"label_id": key, **figures} for key, figures in found.items()]}


# -- SLA and bots (loket.reports.sla_bots) ----------------------------------------------------
class SlaQuery(ReportQuery):
    policy_id: int | None = None  # the breaches of one policy
    target: str | None = None  # first_response | next_response | resolution
    limit: int = Field(50, ge=1, le=200)  # breaches, newest first
    offset: int = Field(0, ge=0)


class TargetFigures(Schema):
    met: int  # ended by the due time, on the day they ended
    breached: int  # due time passed, on that day
    achieved_share: float | None  # met / (met + breached), 0..1


class SlaTargets(Schema):
    first_response: TargetFigures
    next_response: TargetFigures
    resolution: TargetFigures


class SlaPolicyFigures(Schema):
    policy_id: int | None  # null: a deleted policy's
    name: str | None
    targets: SlaTargets
    all: TargetFigures


class SlaBreachOut(Schema):
    conversation_id: int
    conversation_number: int
    policy_id: int | None
    target: str
    due_at: dt.datetime
    breached_at: dt.datetime
    completed_at: dt.datetime | None  # when the late target ended after all


class SlaOut(Schema):
    start: dt.date = Field(..., alias="from")
    end: dt.date = Field(..., alias="to")
    totals: SlaTargets
    all: TargetFigures
    policies: list[SlaPolicyFigures]
    breaches_count: int
    breaches: list[SlaBreachOut]


@router.get("/reports/sla", response=SlaOut, by_alias=True)
def sla(request, query: Query[SlaQuery]):
    """Per SLA policy and target: achieved, breached and the achieved share; and the range's
    breaches (``limit``/``offset``, newest first, optionally of one ``policy_id`` and
    ``target``). Channel, team, member (the assignee) and priority are the conversation's now."""
    start, end, filters = _range(request, query)
    if query.target is not None and query.target not in sla_bots.TARGETS:
        raise ApiError(400, "invalid", "target is first_response, next_response or resolution")
    workspace = request.membership.workspace
    zone = workspace_zone(workspace)
    figures = sla_bots.sla(workspace.pk, start, end, zone, filters)
    found = sla_bots.breaches(
        workspace.pk, start, end, zone, filters, policy_id=query.policy_id, target=query.target
    )
    rows = found.values(
        "conversation_id",
        "policy_id",
        "target",
        "due_at",
        "breached_at",
        "completed_at",
        conversation_number=F("conversation__number"),
    )[query.offset : query.offset + query.limit]
    return {
        "from": start,
        "to": end,
        **figures,
        "breaches_count": found.count(),
        "breaches": list(rows),
    }


class EndFigures(Schema):
    started: int  # sessions that started in the range
    active: int  # still talking
    completed: int
    handed_off: int
    dropped: int
    stopped: int  # an agent took over
    bot_resolved: int  # ended at a close step
    active_share: float | None  # of started, 0..1
    completed_share: float | None
    handed_off_share: float | None
    dropped_share: float | None
    stopped_share: float | None
    bot_resolved_share: float | None


class StepFigures(Schema):
    # The step id; "__handoff__": too many wrong answers, a failed lookup or no FAQ answer,
    # where the flow names no step of its own.
    step: str
    type: str | None
    title: str
    reached: int  # sessions that came to it at least once
    reached_share: float | None
    dropped: int  # sessions dropped while waiting there


class VersionFigures(EndFigures):
    version_id: int
    number: int
    steps: list[StepFigures]


class FlowFigures(EndFigures):
    flow_id: int
    name: str
    steps: list[StepFigures]  # every version's steps, the newest version's order first
    versions: list[VersionFigures]  # newest first


class BotsOut(Schema):
    start: dt.date = Field(..., alias="from")
    end: dt.date = Field(..., alias="to")
    flows: list[FlowFigures]


@router.get("/reports/bots", response=BotsOut, by_alias=True)
def bots(request, query: Query[ReportQuery]):
    """Per flow and version: the sessions that started in the range, how they ended, and how
    many reached each step (in the flow's order). ``member_id`` does not apply to bots."""
    start, end, filters = _range(request, query)
    workspace = request.membership.workspace
    flows = sla_bots.bots(workspace.pk, start, end, workspace_zone(workspace), filters)
    return {"from": start, "to": end, "flows": flows}
