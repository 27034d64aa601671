"""The report pages (supervisors, admins and owners): overview, agents, busiest hours, and the
conversations behind a number. They read loket.reports.queries (rollups, never conversations)
over a range of the workspace's days, filtered by channel, team, agent and priority, in calendar
or business time; each figure carries its definition and links to its conversations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET

from loket.inbox.models import Channel, Label, Priority
from loket.reports import exports, queries
from loket.reports.formatting import NONE, change
from loket.reports.formatting import duration as _duration
from loket.reports.formatting import share as _share
from loket.reports.queries import Filters
from loket.tenancy.models import Membership, Team
from loket.web.workspace import workspace_view, workspace_zone

DEFAULT_DAYS = 30
MAX_DAYS = 366

# The definitions shown next to each figure (docs/reports.md, loket.reports.metrics).
DEFINITIONS = {
    "created": gettext_lazy("Conversations whose first message came in these days."),
    "resolved": gettext_lazy(
        "Resolutions these days: a conversation resolved again after reopening counts again."
    ),
    "reopened": gettext_lazy(
        "Resolved conversations that became active again: the customer wrote, or a member "
        "reopened it."
    ),
    "first_response": gettext_lazy(
        "Average time from the customer's first message to the first reply by a person. Bots, "
        "automatic replies, rules and notes are not replies. Pending and snoozed do not stop "
        "the clock."
    ),
    "next_response": gettext_lazy(
        "Average time from a customer's later message (the oldest unanswered one) to the next "
        "reply by a person."
    ),
    "resolution": gettext_lazy(
        "Average time from the start (or the reopening) to the resolution, without the time "
        "spent pending, waiting for the customer."
    ),
    "replies_per_resolution": gettext_lazy(
        "Replies by people per resolution, from the start (or the reopening) to the resolution."
    ),
    "bot_resolved_share": gettext_lazy(
        "Share of resolutions where the bot wrote and no person replied."
    ),
    "handoff_share": gettext_lazy(
        "Share of resolutions where the bot wrote first and a person replied after it."
    ),
    "online": gettext_lazy(
        "Time the member was online (their availability in the inbox) on these days, counted "
        "since Loket started recording it; away and offline do not count. Not split by channel, "
        "team or priority."
    ),
    "csat": gettext_lazy(
        "Share of customers' ratings that are 4 or 5 out of 5, on the day the rating was last "
        "given; counted for the conversation's assignee."
    ),
}


def _reader(request) -> None:
    if not request.membership.reads_reports:
        raise PermissionDenied(_("Reports are for supervisors, admins and owners."))


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@dataclass
class Selection:
    """The range, filters and clock a report page shows, read from its query string."""

    start: dt.date
    end: dt.date
    filters: Filters
    business: bool
    problems: list[str]

    @classmethod
    def of(cls, request) -> Selection:
        today = timezone.now().astimezone(workspace_zone(request.workspace)).date()
        problems = []
        end = _date(request.GET.get("to")) or today
        start = _date(request.GET.get("from")) or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            problems.append(_("The range starts after it ends; showing the last 30 days."))
            end, start = today, today - dt.timedelta(days=DEFAULT_DAYS - 1)
        if (end - start).days + 1 > MAX_DAYS:
            problems.append(_("At most a year at a time; showing the year up to the end date."))
            start = end - dt.timedelta(days=MAX_DAYS - 1)
        workspace_id = request.workspace.pk
        # Only this workspace's ids count; another's is ignored as if not given.
        channel = _int(request.GET.get("channel"))
        team = _int(request.GET.get("team"))
        member = _int(request.GET.get("agent"))
        if channel and not Channel.objects.filter(workspace_id=workspace_id, pk=channel).exists():
            channel = None
        if team and not Team.objects.filter(workspace_id=workspace_id, pk=team).exists():
            team = None
        if member and not Membership.objects.filter(workspace_id=workspace_id, pk=member).exists():
            member = None
        priority = _int(request.GET.get("priority"))
        if priority not in Priority.values:
            priority = None
        label = _int(request.GET.get("label"))
        if label and not Label.objects.filter(workspace_id=workspace_id, pk=label).exists():
            label = None
        return cls(
            start,
            end,
            Filters(
                channel_id=channel,
                team_id=team,
                member_id=member,
                priority=priority,
                label_id=label,
            ),
            request.GET.get("clock") == "business",
            problems,
        )

    def query(self, **extra) -> str:
        values = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "channel": self.filters.channel_id or "",
            "team": self.filters.team_id or "",
            "agent": self.filters.member_id or "",
            "priority": "" if self.filters.priority is None else self.filters.priority,
            "label": self.filters.label_id or "",
            "clock": "business" if self.business else "",
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v != ""})


def _options(workspace_id: int) -> dict:
    return {
        "channels": list(
            Channel.objects.filter(workspace_id=workspace_id).order_by("name").values("pk", "name")
        ),
        "teams": list(
            Team.objects.filter(workspace_id=workspace_id).order_by("name").values("pk", "name")
        ),
        "members": [
            {"pk": m.pk, "name": m.display_name or m.user.email}
            for m in Membership.objects.filter(workspace_id=workspace_id)
            .select_related("user")
            .order_by("user__name", "user__email")
        ],
        "priorities": Priority.choices,
        "labels": list(
            Label.objects.filter(workspace_id=workspace_id).order_by("name").values("pk", "name")
        ),
    }


def ratings_detail(figures: dict) -> str:
    """Under a CSAT score: how many ratings, and their average."""
    if not figures["ratings"]:
        return ""
    return ngettext(
        "%(n)s rating, %(average)s/5", "%(n)s ratings, %(average)s/5", figures["ratings"]
    ) % {"n": figures["ratings"], "average": f"{figures['csat_average']:.1f}"}


def _change(now, before, lower_is_better: bool) -> dict | None:
    """The change against the previous period, and whether it is for the better."""
    percent, good = change(now, before, lower_is_better)
    return {"percent": percent, "good": good} if percent else None


def _tiles(sel: Selection, now: dict, before: dict, drill) -> list[dict]:
    suffix = "_business_seconds" if sel.business else "_seconds"
    tiles = []
    for key, label, value, shown, lower, figure in (
        ("created", _("New conversations"), now["created"], None, False, "created"),
        ("resolved", _("Resolutions"), now["resolved"], None, False, "resolved"),
        ("reopened", _("Reopened"), now["reopened"], None, True, "reopened"),
        (
            "first_response",
            _("First response time"),
            now["first_response" + suffix],
            _duration(now["first_response" + suffix]),
            True,
            "first_responses",
        ),
        (
            "next_response",
            _("Next response time"),
            now["next_response" + suffix],
            _duration(now["next_response" + suffix]),
            True,
            "next_responses",
        ),
        (
            "resolution",
            _("Resolution time"),
            now["resolution" + suffix],
            _duration(now["resolution" + suffix]),
            True,
            "resolved",
        ),
        (
            "replies_per_resolution",
            _("Replies per resolution"),
            now["replies_per_resolution"],
            NONE
            if now["replies_per_resolution"] is None
            else f"{now['replies_per_resolution']:.1f}",
            True,
            "resolved",
        ),
        (
            "bot_resolved_share",
            _("Resolved by the bot"),
            now["bot_resolved_share"],
            _share(now["bot_resolved_share"]),
            False,
            "bot_resolved",
        ),
        (
            "handoff_share",
            _("Handed over by the bot"),
            now["handoff_share"],
            _share(now["handoff_share"]),
            False,
            "handoffs",
        ),
        (
            "csat",
            _("Customer satisfaction"),
            now["csat_score"],
            _share(now["csat_score"]) if now["ratings"] else NONE,
            False,
            "ratings",
        ),
    ):
        previous_key = {"csat": "csat_score"}.get(key, key if key in before else key + suffix)
        tiles.append(
            {
                "key": key,
                "label": label,
                "value": value if shown is None else shown,
                "definition": DEFINITIONS[key],
                "change": _change(value, before.get(previous_key), lower),
                "detail": ratings_detail(now) if key == "csat" else "",
                "url": drill(figure),
            }
        )
    return tiles


def _page(request, template: str, sel: Selection, **context):
    base = reverse(request.resolver_match.view_name, args=[request.workspace.slug])
    return render(
        request,
        "web/reports/" + template,
        {
            "sel": sel,
            "options": _options(request.workspace.pk),
            "page_url": base,
            "query": sel.query(),
            **context,
        },
    )


def _drill(request, sel: Selection):
    url = reverse("reports:conversations", args=[request.workspace.slug])
    return lambda figure: f"{url}?{sel.query(figure=figure)}"


@require_GET
@workspace_view
def overview(request):
    _reader(request)
    sel = Selection.of(request)
    workspace_id = request.workspace.pk
    now, before, (before_start, before_end) = queries.compare(
        workspace_id, sel.start, sel.end, sel.filters
    )
    by = "week" if (sel.end - sel.start).days > 92 else "day"
    series = queries.series(workspace_id, sel.start, sel.end, sel.filters, by=by)
    suffix = "_business_seconds" if sel.business else "_seconds"
    chart = {
        "days": [day.isoformat() for day, _figures in series],
        "created": [f["created"] for _d, f in series],
        "resolved": [f["resolved"] for _d, f in series],
        "first_response_minutes": [
            None if f["first_response" + suffix] is None else f["first_response" + suffix] / 60
            for _d, f in series
        ],
        "labels": {
            "created": _("New conversations"),
            "resolved": _("Resolutions"),
            "first_response_minutes": _("First response time (minutes)"),
        },
    }
    drill = reverse("reports:conversations", args=[request.workspace.slug])

    def link(day: dt.date, figure: str) -> str:
        """The conversations behind a row's number: its day, or its week within the range."""
        last = min(sel.end, day + dt.timedelta(days=6)) if by == "week" else day
        first = max(sel.start, day)
        bounds = {"from": first.isoformat(), "to": last.isoformat()}
        return f"{drill}?{sel.query(figure=figure, **bounds)}"

    rows = [
        {
            "day": day,
            "created": f["created"],
            "created_url": link(day, "created"),
            "resolved": f["resolved"],
            "resolved_url": link(day, "resolved"),
            "first_response": _duration(f["first_response" + suffix]),
            "first_response_url": link(day, "first_responses"),
        }
        for day, f in series
    ]
    return _page(
        request,
        "overview.html",
        sel,
        tiles=_tiles(sel, now, before, _drill(request, sel)),
        before_start=before_start,
        before_end=before_end,
        chart=chart,
        rows=rows,
        by=by,
    )


@require_GET
@workspace_view
def agents(request):
    _reader(request)
    sel = Selection.of(request)
    suffix = "_business_seconds" if sel.business else "_seconds"
    figures = queries.by_agent(
        request.workspace.pk, sel.start, sel.end, workspace_zone(request.workspace), sel.filters
    )
    names = {m["pk"]: m["name"] for m in _options(request.workspace.pk)["members"]}
    drill = reverse("reports:conversations", args=[request.workspace.slug])
    rows = []
    for member_id, f in figures.items():
        who = {"agent": member_id} if member_id else {"agent": "", "unassigned": "1"}

        def link(figure: str, who=who) -> str:
            return f"{drill}?{sel.query(figure=figure, **who)}"

        rows.append(
            {
                "name": names.get(member_id, _("Unassigned") if member_id is None else "?"),
                "responses": f["first_responses"] + f["next_responses"],
                "first_response": _duration(f["first_response" + suffix]),
                "next_response": _duration(f["next_response" + suffix]),
                "resolved": f["resolved"],
                "resolution": _duration(f["resolution" + suffix]),
                "replies_per_resolution": NONE
                if f["replies_per_resolution"] is None
                else f"{f['replies_per_resolution']:.1f}",
                "url": link("resolved"),
                "responses_url": link("responses"),
                "first_response_url": link("first_responses"),
                "next_response_url": link("next_responses"),
                "ratings_url": link("ratings"),
                "csat": _share(f["csat_score"]) if f["ratings"] else NONE,
                "csat_detail": ratings_detail(f),
                "online": NONE if f["online_seconds"] is None else _duration(f["online_seconds"]),
                "sort": (-(f["first_responses"] + f["next_responses"]), names.get(member_id, "")),
            }
        )
    rows.sort(key=lambda row: row["sort"])
    return _page(request, "agents.html", sel, rows=rows, definitions=DEFINITIONS)


@require_GET
@workspace_view
def busiest_hours(request):
    _reader(request)
    sel = Selection.of(request)
    grid = queries.heatmap(request.workspace.pk, sel.start, sel.end, sel.filters)
    top = max((max(row) for row in grid), default=0) or 1
    days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    drill = reverse("reports:conversations", args=[request.workspace.slug])
    rows = [
        {
            "day": days[index],
            "cells": [
                {
                    "count": count,
                    "level": 0 if not count else 1 + round(4 * count / top),
                    "url": f"{drill}?{sel.query(figure='came_in', weekday=index, hour=hour)}",
                }
                for hour, count in enumerate(row)
            ],
            "total": sum(row),
            "url": f"{drill}?{sel.query(figure='came_in', weekday=index)}",
        }
        for index, row in enumerate(grid)
    ]
    return _page(
        request, "busiest_hours.html", sel, rows=rows, hours=range(24), total=sum(map(sum, grid))
    )


FIGURES = {
    "created": gettext_lazy("New conversations"),
    "resolved": gettext_lazy("Resolutions"),
    "reopened": gettext_lazy("Reopened"),
    "bot_resolved": gettext_lazy("Resolved by the bot"),
    "handoffs": gettext_lazy("Handed over by the bot"),
    "first_responses": gettext_lazy("First responses"),
    "next_responses": gettext_lazy("Next responses"),
    "ratings": gettext_lazy("Customer ratings"),
    "responses": gettext_lazy("Responses"),
    "came_in": gettext_lazy("Conversations that came in"),
}


@require_GET
@workspace_view
def conversations(request):
    """The conversations a figure counts (20 a page), each linking to the inbox."""
    _reader(request)
    sel = Selection.of(request)
    figure = request.GET.get("figure", "created")
    if figure not in FIGURES:
        figure = "created"
    # The breakdowns' links: conversations without a team or without a label (a label itself
    # is one of the filters).
    without_team = request.GET.get("no_team") == "1"
    unlabelled = request.GET.get("no_label") == "1" and sel.filters.label_id is None
    unassigned = request.GET.get("unassigned") == "1" and sel.filters.member_id is None
    # A cell of the busiest-hours grid: weekday 0-6 (Monday first) and hour 0-23.
    weekday = _int(request.GET.get("weekday"))
    weekday = weekday if weekday is not None and 0 <= weekday <= 6 else None
    hour = _int(request.GET.get("hour"))
    hour = hour if hour is not None and 0 <= hour <= 23 else None
    found = queries.conversations_behind(
        request.workspace.pk,
        sel.start,
        sel.end,
        figure,
        sel.filters,
        without_team=without_team,
        without_member=unassigned,
        unlabelled=unlabelled,
        weekday=weekday,
        hour=hour,
    ).select_related("contact", "assignee__user")
    page = Paginator(found, 20).get_page(request.GET.get("page"))
    hidden = {
        "no_team": "1" if without_team else "",
        "no_label": "1" if unlabelled else "",
        "unassigned": "1" if unassigned else "",
        "weekday": "" if weekday is None else str(weekday),
        "hour": "" if hour is None else str(hour),
    }
    hidden = {name: value for name, value in hidden.items() if value}
    of = [_("No team")] if without_team else []
    if unassigned:
        of.append(_("Unassigned"))
    if weekday is not None:
        days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
        of.append(days[weekday] if hour is None else f"{days[weekday]} {hour}:00")
    if unlabelled:
        of.append(_("No label"))
    elif sel.filters.label_id:
        of.extend(
            Label.objects.filter(
                workspace_id=request.workspace.pk, pk=sel.filters.label_id
            ).values_list("name", flat=True)
        )
    return _page(
        request,
        "conversations.html",
        sel,
        figure=figure,
        figure_label=" · ".join([str(FIGURES[figure]), *of]),
        page=page,
        figure_query=sel.query(figure=figure, **hidden),
        hidden=hidden,
    )


@require_GET
@workspace_view
def ratings(request):
    """The customers' ratings of the range (newest first, 20 a page), with their comments."""
    _reader(request)
    sel = Selection.of(request)
    found = exports.ratings_found(
        request.workspace.pk,
        sel.start,
        sel.end,
        sel.filters,
        comments_only=request.GET.get("comments") == "1",
    ).select_related("conversation__contact", "conversation__assignee__user")
    page = Paginator(found, 20).get_page(request.GET.get("page"))
    return _page(
        request,
        "ratings.html",
        sel,
        page=page,
        comments_only=request.GET.get("comments") == "1",
        page_query=sel.query(comments="1" if request.GET.get("comments") == "1" else ""),
    )
