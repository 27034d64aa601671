"""Downloads of the reports over the API: ``GET /api/v1/reports/export/{report}?format=csv|xlsx``
with the filters of the other report endpoints (``from``, ``to``, ``channel_id``, ``team_id``,
``member_id``, ``priority``), streamed (loket.reports.exports; docs/reports.md, Exports). For
tokens of supervisors, admins and owners (403 otherwise); column headers in the token owner's
language."""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.utils import translation
from ninja import Query, Router

from loket.api.reports import ReportQuery, _range
from loket.web.reports.exports import CONTENT_TYPES, download, filename, table_of

router = Router(tags=["reports"])

Report = Literal[
    "overview",
    "agents",
    "busiest-hours",
    "channels",
    "teams",
    "labels",
    "sla",
    "bots",
    "ratings",
    "conversations",
]


class ExportQuery(ReportQuery):
    format: Literal["csv", "xlsx"] = "csv"
    comments: bool = False  # ratings: only those with a comment


def _language(membership) -> str:
    """The token owner's language, else the workspace's."""
    supported = {code for code, _name in settings.LANGUAGES}
    for choice in (membership.user.locale, membership.workspace.locale):
        if choice in supported:
            return choice
    return settings.LANGUAGE_CODE


_FILE = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/reports/export/{report}",
    response={200: None},
    openapi_extra={
        "responses": {
            "200": {
                "description": "The report as a file (an attachment, streamed): CSV (UTF-8 "
                "with a byte order mark) or XLSX.",
                "content": {CONTENT_TYPES["csv"]: _FILE, CONTENT_TYPES["xlsx"]: _FILE},
            }
        }
    },
)
def export(request, report: Report, query: Query[ExportQuery]):
    """A report as CSV or XLSX: ``overview`` (figures per day and the range's totals),
    ``agents``, ``busiest-hours`` (weekday by hour), ``channels``, ``teams``, ``labels`` (the
    figures per channel, team or label), ``sla`` (per policy and target), ``bots`` (the funnel:
    per flow, version and step), ``ratings`` (with their comments) or
    ``conversations`` (one row per conversation created in the range, with its metrics,
    labels, rating and custom fields). Durations in seconds, shares in percent."""
    start, end, filters = _range(request, query)
    with translation.override(_language(request.membership)):
        table = table_of(
            report,
            request.membership.workspace_id,
            start,
            end,
            filters,
            comments_only=query.comments,
        )
    return download(request, table, query.format, filename(report, start, end, query.format))
