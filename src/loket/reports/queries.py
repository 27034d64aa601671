"""Reading the reports: sums of ``DailyRollup`` / ``HourlyVolume`` over a range of
workspace-local days, filtered by channel, team, member and priority, and the figures derived
from them (averages, shares) by the definitions of ``loket.reports.metrics``. Every query reads
the rollups only (one row per day and combination of dimensions), never conversations; the
drill-down (``conversations_behind``) reads the facts of the range."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Sum

from loket.inbox.models import Conversation
from loket.reports import presence
from loket.reports.models import (
    DailyChannelMemberRollup,
    DailyRollup,
    FactKind,
    HourlyVolume,
    ReportFact,
)
from loket.reports.rollups import FACT_SUMS

COUNTS = (
    "created",
    "resolved",
    "reopened",
    "bot_resolved",
    "handoffs",
    "resolution_responses",
    "first_responses",
    "next_responses",
    "ratings",
    "rating_sum",
    "ratings_satisfied",
)
SECONDS = (
    "resolution_seconds",
    "resolution_business_seconds",
    "first_response_seconds",
    "first_response_business_seconds",
    "next_response_seconds",
    "next_response_business_seconds",
)
FIELDS = COUNTS + SECONDS
DIMENSIONS = ("channel_id", "team_id", "member_id", "priority")


@dataclass(frozen=True)
class Filters:
    channel_id: int | None = None
    team_id: int | None = None
    member_id: int | None = None
    priority: int | None = None
    # Conversations carrying this label now. The rollups have no label dimension: with it the
    # figures are summed from the range's facts instead (``_summable``).
    label_id: int | None = None

    def of(self) -> dict:
        return {name: getattr(self, name) for name in DIMENSIONS if getattr(self, name) is not None}


def labelled_facts(facts, label_id: int | None):
    """Facts of conversations carrying the label (a subquery on the labels' table, no join of
    the conversations)."""
    if label_id is None:
        return facts
    through = Conversation.labels.through
    return facts.filter(
        conversation_id__in=through.objects.filter(label_id=label_id).values("conversation_id")
    )


def _summable(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters, dimension: str = ""
) -> tuple:
    """The rows a report sums and how: the rollups (``_rows``) with ``Sum`` of each field, or,
    with a label filter, the range's facts of the labelled conversations summed as ``roll()``
    sums them into the rollups (``FACT_SUMS``), so both give the same figures."""
    if filters.label_id is None:
        return _rows(workspace_id, start, end, filters, dimension), {
            name: Sum(name) for name in FIELDS
        }
    facts = ReportFact.objects.filter(
        workspace_id=workspace_id, day__gte=start, day__lte=end, **filters.of()
    )
    return labelled_facts(facts, filters.label_id), FACT_SUMS


def _rows(workspace_id: int, start: dt.date, end: dt.date, filters: Filters, dimension: str = ""):
    """Rollup rows of the days ``start`` to ``end`` (both included): the per-channel-and-member
    ones (``DailyChannelMemberRollup``, ~10 times fewer) unless the filters or the ``dimension``
    grouped by need a team or a priority."""
    detailed = (
        filters.team_id is not None
        or filters.priority is not None
        or dimension in ("team_id", "priority")
    )
    return (DailyRollup if detailed else DailyChannelMemberRollup).objects.filter(
        workspace_id=workspace_id, day__gte=start, day__lte=end, **filters.of()
    )


def _sums(values: dict) -> dict:
    return {name: values.get(name) or 0 for name in FIELDS}


def derived(sums: dict) -> dict:
    """The figures a report shows, from summed rollups: counts as they are, averages in seconds
    (None without a sample), shares of resolutions (0..1, None without one)."""

    def average(total: str, count: str) -> float | None:
        return sums[total] / sums[count] if sums[count] else None

    resolved = sums["resolved"]
    return {
        "created": sums["created"],
        "resolved": resolved,
        "reopened": sums["reopened"],
        "first_response_seconds": average("first_response_seconds", "first_responses"),
        "first_response_business_seconds": average(
            "first_response_business_seconds", "first_responses"
        ),
        "next_response_seconds": average("next_response_seconds", "next_responses"),
        "next_response_business_seconds": average(
            "next_response_business_seconds", "next_responses"
        ),
        "resolution_seconds": average("resolution_seconds", "resolved"),
        "resolution_business_seconds": average("resolution_business_seconds", "resolved"),
        "replies_per_resolution": average("resolution_responses", "resolved"),
        "bot_resolved_share": sums["bot_resolved"] / resolved if resolved else None,
        "handoff_share": sums["handoffs"] / resolved if resolved else None,
        "first_responses": sums["first_responses"],
        "next_responses": sums["next_responses"],
        "ratings": sums["ratings"],
        "csat_average": average("rating_sum", "ratings"),  # 1-5
        # The usual CSAT score: the share of ratings that are 4 or 5.
        "csat_score": sums["ratings_satisfied"] / sums["ratings"] if sums["ratings"] else None,
    }


def totals(workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters()) -> dict:
    """The range's figures (``derived``)."""
    rows, sums = _summable(workspace_id, start, end, filters)
    return derived(_sums(rows.aggregate(**sums)))


def compare(workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters()):
    """The range's figures and those of the same number of days just before it."""
    length = (end - start).days + 1
    before_end = start - dt.timedelta(days=1)
    before_start = before_end - dt.timedelta(days=length - 1)
    return (
        totals(workspace_id, start, end, filters),
        totals(workspace_id, before_start, before_end, filters),
        (before_start, before_end),
    )


def series(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters(), by: str = "day"
) -> list[tuple[dt.date, dict]]:
    """The figures per day (or per ISO week, by its Monday) of the range, every day (week)
    present, empty ones with zero counts."""
    rows, sums = _summable(workspace_id, start, end, filters)
    per_day = {row["day"]: _sums(row) for row in rows.values("day").annotate(**sums).order_by()}
    buckets: dict[dt.date, dict] = {}
    day = start
    while day <= end:
        key = day - dt.timedelta(days=day.weekday()) if by == "week" else day
        bucket = buckets.setdefault(key, dict.fromkeys(FIELDS, 0))
        for name, value in per_day.get(day, {}).items():
            bucket[name] += value
        day += dt.timedelta(days=1)
    return [(key, derived(sums)) for key, sums in buckets.items()]


def by_dimension(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    dimension: str,
    filters: Filters = Filters(),
) -> dict:
    """The range's figures per channel, team, member or priority: ``{id: derived}``."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    rows, sums = _summable(workspace_id, start, end, filters, dimension)
    return {
        row[dimension]: derived(_sums(row))
        for row in rows.values(dimension).annotate(**sums).order_by()
    }


def by_agent(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    zone: ZoneInfo,
    filters: Filters = Filters(),
) -> dict:
    """The agents report: ``by_dimension`` per member, each with ``online_seconds`` (time spent
    online on those days, ``loket.reports.presence``). Online time belongs to no channel, team,
    priority or label: with one of those filters only members with figures are listed;
    otherwise members who were online without figures are listed too (with the agent filter,
    only that member)."""
    found = by_dimension(workspace_id, start, end, "member_id", filters)
    members = None if filters.member_id is None else [filters.member_id]
    online = presence.online_seconds(workspace_id, start, end, zone, members)
    if all(
        value is None
        for value in (filters.channel_id, filters.team_id, filters.priority, filters.label_id)
    ):
        for member_id in online.keys() - found.keys():
            found[member_id] = derived(_sums({}))
    for member_id, figures in found.items():
        figures["online_seconds"] = None if member_id is None else online.get(member_id, 0.0)
    return found


def by_label(workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters()) -> dict:
    """The range's figures per label the conversations carry now: ``{label_id: derived}``,
    ``None`` for conversations without a label. The rollups have no label dimension, so this
    reads the range's facts (index ``report_fact_ws_day``) joined to their conversations'
    labels, in one grouped query summed as the rollups are; a conversation with two labels
    counts in both rows."""
    return {
        row["label_id"]: derived(_sums(row))
        for row in label_rows(workspace_id, start, end, filters)
    }


def label_rows(workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters()):
    """``by_label``'s one grouped query: the facts' sums per label id."""
    facts = ReportFact.objects.filter(
        workspace_id=workspace_id, day__gte=start, day__lte=end, **filters.of()
    )
    return (
        labelled_facts(facts, filters.label_id)
        .values(label_id=F("conversation__labels"))
        .annotate(**FACT_SUMS)
        .order_by()
    )


def heatmap(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = Filters()
) -> list[list[int]]:
    """Conversations that came in (new or reopened) per weekday (Monday first) and local hour:
    7 rows of 24."""
    grid = [[0] * 24 for _ in range(7)]
    wanted = {k: v for k, v in filters.of().items() if k in ("channel_id", "team_id")}
    if filters.label_id is None:
        rows = (
            HourlyVolume.objects.filter(
                workspace_id=workspace_id, day__gte=start, day__lte=end, **wanted
            )
            .values("day", "hour")
            .annotate(n=Sum("conversations"))
            .order_by()
        )
    else:  # HourlyVolume has no label: count the labelled conversations' facts as roll() does
        facts = ReportFact.objects.filter(
            workspace_id=workspace_id,
            day__gte=start,
            day__lte=end,
            kind__in=(FactKind.CREATED, FactKind.REOPENED),
            **wanted,
        )
        rows = (
            labelled_facts(facts, filters.label_id)
            .values("day", "hour")
            .annotate(n=Count("pk"))
            .order_by()
        )
    # Grouped by day in SQL and by weekday here: no weekday computed for every row.
    for row in rows:
        grid[row["day"].weekday()][row["hour"]] += row["n"]
    return grid


_BEHIND = {
    "created": {"kind": FactKind.CREATED},
    "resolved": {"kind": FactKind.RESOLVED},
    "reopened": {"kind": FactKind.REOPENED},
    "bot_resolved": {"kind": FactKind.RESOLVED, "by_bot": True},
    "handoffs": {"kind": FactKind.RESOLVED, "handoff": True},
    "first_responses": {"kind": FactKind.FIRST_RESPONSE},
    "next_responses": {"kind": FactKind.NEXT_RESPONSE},
    "ratings": {"kind": FactKind.CSAT},
    "responses": {"kind__in": (FactKind.FIRST_RESPONSE, FactKind.NEXT_RESPONSE)},
    # The busiest-hours grid: conversations that came in (new or reopened).
    "came_in": {"kind__in": (FactKind.CREATED, FactKind.REOPENED)},
}


def conversations_behind(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    figure: str,
    filters: Filters = Filters(),
    *,
    without_team: bool = False,
    without_member: bool = False,
    unlabelled: bool = False,
    weekday: int | None = None,
    hour: int | None = None,
):
    """The conversations a figure counts (latest activity first), for the drill-down.
    ``without_team`` / ``without_member``: only facts with no team / no member (unassigned); a
    label in ``filters``: only conversations carrying it now; ``unlabelled``: only those
    carrying none; ``weekday`` (0 is Monday) and ``hour``: only facts of that local weekday and
    hour (a cell of the heatmap)."""
    if figure not in _BEHIND:
        raise ValueError(f"unknown figure {figure!r}")
    facts = ReportFact.objects.filter(
        workspace_id=workspace_id,
        day__gte=start,
        day__lte=end,
        **_BEHIND[figure],
        **filters.of(),
    )
    if without_team:
        facts = facts.filter(team_id__isnull=True)
    if without_member:
        facts = facts.filter(member_id__isnull=True)
    if weekday is not None:
        facts = facts.filter(day__iso_week_day=weekday + 1)
    if hour is not None:
        facts = facts.filter(hour=hour)
    facts = labelled_facts(facts, filters.label_id)
    found = Conversation.objects.filter(
        workspace_id=workspace_id, pk__in=facts.values("conversation_id")
    )
    if unlabelled:
        found = found.filter(labels__isnull=True)
    return found.order_by("-last_message_at", "-pk")
