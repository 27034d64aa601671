"""The report pages that break the figures down: per channel and per team (the rollups, by
``queries.by_dimension``) and per label (the facts joined to the labels conversations carry now,
``queries.by_label``). Each row has the agents page's figures in calendar or business time, every
number linking to the conversations behind it, with the page's filters."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from loket.inbox.models import Channel, Label
from loket.reports import queries
from loket.reports.formatting import NONE
from loket.reports.formatting import duration as _duration
from loket.reports.formatting import share as _share
from loket.tenancy.models import Team
from loket.web.reports.views import DEFINITIONS, Selection, _page, _reader, ratings_detail
from loket.web.workspace import workspace_view

# (key, column heading, the figure its link drills into)
COLUMNS = (
    ("created", gettext_lazy("New conversations"), "created"),
    ("resolved", gettext_lazy("Resolutions"), "resolved"),
    ("reopened", gettext_lazy("Reopened"), "reopened"),
    ("first_response", gettext_lazy("First response time"), "first_responses"),
    ("next_response", gettext_lazy("Next response time"), "next_responses"),
    ("resolution", gettext_lazy("Resolution time"), "resolved"),
    ("replies_per_resolution", gettext_lazy("Replies per resolution"), "resolved"),
    ("bot_resolved_share", gettext_lazy("Resolved by the bot"), "bot_resolved"),
    ("handoff_share", gettext_lazy("Handed over by the bot"), "handoffs"),
    ("csat", gettext_lazy("Customer satisfaction"), "ratings"),
)

LABEL_DEFINITION = gettext_lazy(
    "Per label the conversations carry now; a conversation with two labels counts in both "
    "rows, so the rows add up to more than the total."
)


def _shown(figures: dict, key: str, business: bool) -> str:
    suffix = "_business_seconds" if business else "_seconds"
    if key in ("created", "resolved", "reopened"):
        return str(figures[key])
    if key in ("first_response", "next_response", "resolution"):
        return _duration(figures[key + suffix])
    if key == "replies_per_resolution":
        value = figures[key]
        return NONE if value is None else f"{value:.1f}"
    if key in ("bot_resolved_share", "handoff_share"):
        return _share(figures[key])
    return _share(figures["csat_score"])  # its ratings: _detail


def _detail(figures: dict, key: str) -> str:
    """Under the CSAT score: how many ratings, and their average."""
    return ratings_detail(figures) if key == "csat" else ""


def _rows(request, sel: Selection, figures: dict, names: dict, link) -> list[dict]:
    """One row per id of ``figures`` (named by ``names``; ``link(id)`` the drill-down's extra
    query parameters), most new conversations first."""
    drill = reverse("reports:conversations", args=[request.workspace.slug])
    rows = []
    for key, f in figures.items():
        rows.append(
            {
                "name": names(key),
                "cells": [
                    {
                        "key": column,
                        "value": _shown(f, column, sel.business),
                        "detail": _detail(f, column),
                        "url": f"{drill}?{sel.query(figure=figure, **link(key))}",
                    }
                    for column, _heading, figure in COLUMNS
                ],
                "chart": (f["created"], f["resolved"]),
                "sort": (key is None, -f["created"], -f["resolved"], names(key).lower()),
            }
        )
    rows.sort(key=lambda row: row["sort"])
    return rows


def _render(request, sel: Selection, rows: list[dict], *, heading, one, caption, note=None):
    """``heading``: the page's; ``one``: a row's kind (the first column's heading)."""
    return _page(
        request,
        "breakdown.html",
        sel,
        rows=rows,
        columns=[
            {"key": key, "heading": heading_, "definition": DEFINITIONS[key]}
            for key, heading_, _figure in COLUMNS
        ],
        heading=heading,
        one=one,
        caption=caption,
        note=note,
        chart={
            "names": [row["name"] for row in rows],
            "created": [row["chart"][0] for row in rows],
            "resolved": [row["chart"][1] for row in rows],
            "labels": {
                "name": str(one),
                "created": _("New conversations"),
                "resolved": _("Resolutions"),
            },
        },
    )


@require_GET
@workspace_view
def channels(request):
    _reader(request)
    sel = Selection.of(request)
    workspace_id = request.workspace.pk
    figures = queries.by_dimension(workspace_id, sel.start, sel.end, "channel_id", sel.filters)
    known = dict(Channel.objects.filter(workspace_id=workspace_id).values_list("pk", "name"))
    rows = _rows(
        request,
        sel,
        figures,
        lambda pk: known.get(pk) or _("Removed channel"),
        lambda pk: {"channel": pk or ""},
    )
    return _render(
        request,
        sel,
        rows,
        heading=_("Channels"),
        one=_("Channel"),
        caption=_("Each channel's conversations, response times and resolutions"),
    )


@require_GET
@workspace_view
def teams(request):
    _reader(request)
    sel = Selection.of(request)
    workspace_id = request.workspace.pk
    figures = queries.by_dimension(workspace_id, sel.start, sel.end, "team_id", sel.filters)
    known = dict(Team.objects.filter(workspace_id=workspace_id).values_list("pk", "name"))

    def name(pk):
        return _("No team") if pk is None else known.get(pk) or _("Removed team")

    rows = _rows(
        request,
        sel,
        figures,
        name,
        lambda pk: {"no_team": "1"} if pk is None else {"team": pk},
    )
    return _render(
        request,
        sel,
        rows,
        heading=_("Teams"),
        one=_("Team"),
        caption=_("Each team's conversations, response times and resolutions"),
        note=_("A conversation's figures count for the team it has now."),
    )


@require_GET
@workspace_view
def labels(request):
    _reader(request)
    sel = Selection.of(request)
    workspace_id = request.workspace.pk
    figures = queries.by_label(workspace_id, sel.start, sel.end, sel.filters)
    known = dict(Label.objects.filter(workspace_id=workspace_id).values_list("pk", "name"))
    # Only this workspace's labels (a conversation can carry no other's; this makes sure).
    figures = {pk: f for pk, f in figures.items() if pk is None or pk in known}
    rows = _rows(
        request,
        sel,
        figures,
        lambda pk: _("No label") if pk is None else known[pk],
        lambda pk: {"no_label": "1"} if pk is None else {"label": pk},
    )
    return _render(
        request,
        sel,
        rows,
        heading=_("Labels"),
        one=_("Label"),
        caption=_("Conversations per label, with their response times and resolutions"),
        note=LABEL_DEFINITION,
    )
