"""Downloads of the reports (supervisors, admins and owners, like the pages):
``/w/<slug>/reports/export/<report>.<csv|xlsx>?<the page's filters>``, streamed
(loket.reports.exports). ``report``: overview, agents, busiest-hours, channels, teams, labels,
sla, bots, ratings or conversations (one row per conversation created in the range). Unlike
the pages, a filter that cannot be read is refused (400) rather than replaced: a download must
be what was asked for. An id the workspace does not have matches nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from loket.inbox.models import Priority
from loket.reports import exports
from loket.reports.queries import Filters
from loket.web.reports.views import DEFAULT_DAYS, MAX_DAYS, _reader
from loket.web.workspace import workspace_view, workspace_zone

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SERIALISERS = {"csv": exports.csv_chunks, "xlsx": exports.xlsx_chunks}


class BadFilter(ValueError):
    """A filter of an export that cannot be read; its text says which and why."""


def _day(request, name: str) -> dt.date | None:
    value = request.GET.get(name, "")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadFilter(
            _("%(name)s is not a date like 2026-11-30.") % {"name": f"'{name}'"}
        ) from None


def _id(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    if not value:
        return None
    if not value.isdigit():
        raise BadFilter(_("%(name)s is not a number.") % {"name": f"'{name}'"})
    return int(value)


def selection(request, workspace) -> tuple[dt.date, dt.date, Filters]:
    """The range and filters of an export from the page's query string (``from``, ``to``,
    ``channel``, ``team``, ``agent``, ``priority``, ``label``), with the pages' defaults (the
    last 30 days of the workspace) and limits (at most a year); ``BadFilter`` when one cannot
    be read."""
    today = timezone.now().astimezone(workspace_zone(workspace)).date()
    end = _day(request, "to") or today
    start = _day(request, "from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadFilter(_("The range starts after it ends."))
    if (end - start).days + 1 > MAX_DAYS:
        raise BadFilter(_("At most %(n)s days at a time.") % {"n": MAX_DAYS})
    priority = _id(request, "priority")
    if priority is not None and priority not in Priority.values:
        raise BadFilter(_("'priority' is not one of the priorities (0 to 4)."))
    filters = Filters(
        channel_id=_id(request, "channel"),
        team_id=_id(request, "team"),
        member_id=_id(request, "agent"),
        priority=priority,
        label_id=_id(request, "label"),
    )
    return start, end, filters


def table_of(
    report: str,
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    filters: Filters,
    *,
    comments_only: bool = False,
) -> exports.Table:
    """The report's table; its headers in the language active now."""
    if report == "ratings":
        return exports.ratings_table(workspace_id, start, end, filters, comments_only=comments_only)
    return exports.REPORTS[report](workspace_id, start, end, filters)


async def _pulled(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A synchronous stream served under ASGI one chunk at a time (Django would read a
    synchronous iterator whole there first): each ``next`` runs in the request's own thread,
    where its database connection lives."""
    done = object()
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await step(chunks, done)) is not done:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # a generator: let it end its database work where it began
            await sync_to_async(close, thread_sensitive=True)()


def download(request, table: exports.Table, fmt: str, filename: str) -> StreamingHttpResponse:
    """The table as a streamed attachment in ``fmt`` (csv or xlsx)."""
    chunks = SERIALISERS[fmt](table)
    response = StreamingHttpResponse(
        _pulled(chunks) if isinstance(request, ASGIRequest) else chunks,
        content_type=CONTENT_TYPES[fmt],
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def filename(report: str, start: dt.date, end: dt.date, fmt: str) -> str:
    return f"loket-{report}-{start.isoformat()}-{end.isoformat()}.{fmt}"


@require_GET
@workspace_view
def export(request, report: str, fmt: str):
    _reader(request)
    if report not in exports.REPORTS or fmt not in SERIALISERS:
        raise Http404("no such export")
    try:
        start, end, filters = selection(request, request.workspace)
    except BadFilter as problem:
        return HttpResponseBadRequest(str(problem), content_type="text/plain; charset=utf-8")
    table = table_of(
        report,
        request.workspace.pk,
        start,
        end,
        filters,
        comments_only=request.GET.get("comments") == "1",
    )
    return download(request, table, fmt, filename(report, start, end, fmt))
