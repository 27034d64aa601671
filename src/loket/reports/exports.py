"""Exports of the reports as CSV and XLSX, streamed with flat memory (docs/reports.md, Exports).

A ``Table`` is column headers and a way to iterate its rows; ``csv_chunks`` and ``xlsx_chunks``
turn one into bytes a piece at a time, never holding the whole file. The tables:

* ``conversation_table``: one row per conversation *created* in the range (its ``created`` fact
  falls on one of the days — the conversations the overview's "New conversations" counts, with
  the same filters), in day order then conversation id, with the conversation's metrics over
  its whole timeline so far. Read in keyset chunks of ``CHUNK`` conversations per day with a
  fixed number of queries per chunk, so a million rows read like a thousand.
* ``overview_table``, ``agents_table``, ``busiest_hours_table``, ``ratings_table``: the report
  pages' numbers, from the same ``loket.reports.queries`` the pages read.

Cell values are ``None`` (empty), ``str``, ``int``/``float`` (numbers), ``datetime.datetime``
(naive, the workspace's local time) or ``datetime.date``. CSV writes dates as ISO text
(``2026-11-10 09:30:00``); XLSX writes them as Excel date numbers with a date format. Durations
are whole seconds, shares percentages. Headers and translated values (status, priority, weekday)
are made when the table is built, in the language active then.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.db.models import Count, Q, TextField
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from loket.automation.models import SlaTarget
from loket.bots.models import SessionState
from loket.inbox.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Label,
    Priority,
    SatisfactionRating,
)
from loket.reports import queries, sla_bots
from loket.reports.models import FactKind, ReportFact
from loket.reports.queries import Filters
from loket.tenancy.hours import _zone
from loket.tenancy.models import Membership, Team, Workspace

CHUNK = 2000  # conversations read at a time
EVERYTHING = Filters()  # no filter
BATCH = 500  # rows serialised between two yields

Cell = None | str | int | float | dt.date | dt.datetime


@dataclass(frozen=True)
class Table:
    """What an export holds: ``headers`` and ``rows()``, a fresh iterator of row sequences (one
    cell per header) each time it is called."""

    name: str  # for the file name and the XLSX sheet
    headers: Sequence[str]
    rows: Callable[[], Iterator[Sequence[Cell]]]

    def __iter__(self) -> Iterator[Sequence[Cell]]:
        return self.rows()


# ---------------------------------------------------------------------------------------------
# CSV

_RISKY = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Cell) -> str | int | float:
    kind = type(value)
    if kind is str:
        # A spreadsheet would run a cell starting like a formula: make it text.
        return "'" + value if value.startswith(_RISKY) else value
    if kind is int or value is None:
        return "" if value is None else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        return "" if isinstance(value, float) and not math.isfinite(value) else value
    text = str(value)
    return "'" + text if text.startswith(_RISKY) else text


def csv_chunks(table: Table) -> Iterator[bytes]:
    """The table as CSV (UTF-8 with a byte order mark, so Excel reads it as UTF-8; CRLF line
    ends; quoted where needed), ``BATCH`` rows a chunk. Text cells starting with ``= + - @``, a
    tab or a carriage return get a leading apostrophe (no formula injection)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_cell(h) for h in table.headers])
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(table.rows(), start=1):
        writer.writerow([_csv_cell(cell) for cell in row])
        if count % BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# ---------------------------------------------------------------------------------------------
# XLSX: a minimal Office Open XML workbook with one sheet, written as a zip stream.


class _Sink(io.RawIOBase):
    """A write-only, unseekable file: zipfile writes data descriptors then, and we hand on
    what it wrote after each batch of rows."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("unseekable")

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_RELATION = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_TYPE}worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_TYPE}styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_RELATION}officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_RELATION}worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_RELATION}styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Cell styles: 0 plain, 1 date and time, 2 date, 3 bold (the header row).
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# Characters XML 1.0 cannot hold at all.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")
_EPOCH = dt.datetime(1899, 12, 30)
MAX_TEXT = 32767  # the most characters an Excel cell holds


def _text(value: str) -> str:
    value = _ILLEGAL.sub("", value)[:MAX_TEXT]
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f"<is><t{space}>{escape(value)}</t></is>"


def _xlsx_cell(value: Cell, style: str = "") -> str:
    """One cell, in its place: cells carry no reference, so an empty one is ``<c/>``."""
    kind = type(value)
    if kind is int:
        return f"<c{style}><v>{value}</v></c>"
    if kind is str:
        return f'<c t="inlineStr"{style}>{_text(value)}</c>'
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        return f"<c{style}><v>{int(value)}</v></c>"
    if isinstance(value, dt.datetime):
        serial = (value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400
        return f'<c s="1"><v>{serial:.10f}</v></c>'
    if isinstance(value, dt.date):
        return f'<c s="2"><v>{(value - _EPOCH.date()).days}</v></c>'
    if isinstance(value, int):
        return f"<c{style}><v>{int(value)}</v></c>"
    if isinstance(value, float):
        return f"<c{style}><v>{value!r}</v></c>" if math.isfinite(value) else "<c/>"
    return f'<c t="inlineStr"{style}>{_text(str(value))}</c>'


def _xlsx_row(number: int, row: Iterable[Cell], style: str = "") -> str:
    return f'<row r="{number}">{"".join([_xlsx_cell(value, style) for value in row])}</row>'


def _sheet_name(name: str) -> str:
    return escape(_SHEET_NAME_BAD.sub(" ", _ILLEGAL.sub("", name)).strip()[:31] or "Sheet1")


def xlsx_chunks(table: Table) -> Iterator[bytes]:
    """The table as an XLSX workbook of one sheet (header row in bold and frozen; text as
    inline strings, numbers as numbers, dates as date numbers with a date format), streamed:
    the zip is written to an unseekable buffer (data descriptors, ZIP64) emptied after every
    ``BATCH`` rows."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr(
            "xl/workbook.xml",
            _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            f'<sheet name="{_sheet_name(table.name)}" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>",
        )
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        yield sink.drain()
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                (
                    _XML + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><sheetViews>'
                    '<sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                    'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                    "<sheetData>" + _xlsx_row(1, table.headers, ' s="3"')
                ).encode()
            )
            parts: list[str] = []
            number = 1
            for row in table.rows():
                number += 1
                parts.append(_xlsx_row(number, row))
                if len(parts) == BATCH:
                    sheet.write("".join(parts).encode())
                    parts.clear()
                    yield sink.drain()
            sheet.write(("".join(parts) + "</sheetData></worksheet>").encode())
    yield sink.drain()


# ---------------------------------------------------------------------------------------------
# The per-conversation export


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def _local(at: dt.datetime | None, zone) -> dt.datetime | None:
    return None if at is None else at.astimezone(zone).replace(tzinfo=None)


def _names(model, workspace_id: int) -> dict[int, str]:
    return dict(model.objects.filter(workspace_id=workspace_id).values_list("pk", "name"))


def member_names(workspace_id: int) -> dict[int, str]:
    return {
        m.pk: m.display_name or m.user.email
        for m in Membership.objects.filter(workspace_id=workspace_id).select_related("user")
    }


def _attributes(text: str | None) -> str:
    """A JSON object as the database gives it back (no decoding and encoding again per row);
    nothing for an empty one."""
    return "" if text is None or text in ("{}", "null") else text


def conversation_headers() -> list[str]:
    return [
        _("Number"),
        _("Created at"),
        _("Channel"),
        _("Contact"),
        _("Status"),
        _("Priority"),
        _("Team"),
        _("Assignee"),
        _("First response time (s)"),
        _("First response time, business hours (s)"),
        _("Responses"),
        _("Resolutions"),
        _("Reopened"),
        _("Last resolution time (s)"),
        _("Last resolution time, business hours (s)"),
        _("Replies per resolution"),
        _("Resolved by the bot"),
        _("Handed over by the bot"),
        _("Rating (1-5)"),
        _("Rating comment"),
        _("Labels"),
        _("Contact attributes"),
        _("Conversation fields"),
    ]


def _created_chunks(workspace_id: int, start: dt.date, end: dt.date, filters: Filters):
    """The ``created`` facts of the range, in day order then conversation id, ``CHUNK`` at a
    time: per day a keyset (``conversation_id > last``) on the (workspace, day, kind) index.
    Yields each chunk's ``(conversation_id, at)`` pairs and the same chunk as a subquery of
    conversation ids (cheaper to send again than 2,000 parameters)."""
    created = queries.labelled_facts(
        ReportFact.objects.filter(workspace_id=workspace_id, kind=FactKind.CREATED, **filters.of()),
        filters.label_id,
    )
    days = list(
        created.filter(day__gte=start, day__lte=end)
        .values("day")
        .annotate(n=Count("pk"))
        .order_by("day")
        .values_list("day", flat=True)
    )
    for day in days:
        last = 0
        while True:
            page = created.filter(day=day, conversation_id__gt=last).order_by("conversation_id")
            chunk = list(page.values_list("conversation_id", "at")[:CHUNK])
            if not chunk:
                break
            yield chunk, page.values("conversation_id")[:CHUNK]
            last = chunk[-1][0]
            if len(chunk) < CHUNK:
                break


# A conversation's figures from its facts, by position.
_FIRST_S, _FIRST_B, _ANSWERS, _RESOLVED, _REOPENED, _LAST_S, _LAST_B, _REPLIES, _BOT, _HANDOFF = (
    range(10)
)


def _figures(facts) -> dict[int, list]:
    """Per conversation: first response (s, business s), responses, resolutions, reopenings,
    last resolution (s, business s), replies in resolved stretches, by the bot, handoffs."""
    found: dict[int, list] = {}
    for conversation_id, kind, seconds, business, responses, by_bot, handoff in facts:
        m = found.get(conversation_id)
        if m is None:
            m = found[conversation_id] = [None, None, 0, 0, 0, None, None, 0, 0, 0]
        if kind == FactKind.FIRST_RESPONSE:
            m[_FIRST_S], m[_FIRST_B] = seconds, business
            m[_ANSWERS] += 1
        elif kind == FactKind.NEXT_RESPONSE:
            m[_ANSWERS] += 1
        elif kind == FactKind.REOPENED:
            m[_REOPENED] += 1
        elif kind == FactKind.RESOLVED:  # in time order: the last one stays
            m[_RESOLVED] += 1
            m[_LAST_S], m[_LAST_B] = seconds, business
            m[_REPLIES] += responses or 0
            m[_BOT] += bool(by_bot)
            m[_HANDOFF] += bool(handoff)
    return found


_NO_FIGURES = (None, None, 0, 0, 0, None, None, 0, 0, 0)


def conversation_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """One row per conversation created in the range (``conversation_headers``). Metrics cover
    the conversation's whole timeline so far: first response time, responses (waits a person's
    reply ended, as the agents report counts them), resolutions, reopenings, the last
    resolution's time, replies per resolution, resolutions by the bot and after a handoff."""
    workspace = Workspace.objects.get(pk=workspace_id)
    zone = _zone(workspace.time_zone)
    statuses = {value: str(label) for value, label in ConversationStatus.choices}
    priorities = {value: str(label) for value, label in Priority.choices}
    headers = conversation_headers()

    def rows() -> Iterator[list[Cell]]:
        channels = _names(Channel, workspace_id)
        teams = _names(Team, workspace_id)
        members = member_names(workspace_id)
        for chunk, ids in _created_chunks(workspace_id, start, end, filters):
            conversations = {
                row[0]: row
                for row in Conversation.objects.filter(workspace_id=workspace_id, pk__in=ids)
                .annotate(
                    fields_text=Cast("custom_attributes", TextField()),
                    attributes_text=Cast("contact__attributes", TextField()),
                )
                .values_list(
                    "pk",
                    "number",
                    "channel_id",
                    "status",
                    "priority",
                    "team_id",
                    "assignee_id",
                    "fields_text",
                    "contact__name",
                    "contact__email",
                    "contact__phone",
                    "attributes_text",
                )
            }
            figures = _figures(
                ReportFact.objects.filter(workspace_id=workspace_id, conversation_id__in=ids)
                .exclude(kind__in=(FactKind.CREATED, FactKind.CSAT))
                .order_by("conversation_id", "at")
                .values_list(
                    "conversation_id",
                    "kind",
                    "seconds",
                    "business_seconds",
                    "responses",
                    "by_bot",
                    "handoff",
                )
            )
            labels: dict[int, list[str]] = {}
            for conversation_id, name in (
                Conversation.labels.through.objects.filter(
                    conversation_id__in=ids, label__workspace_id=workspace_id
                )
                .order_by("label__name")
                .values_list("conversation_id", "label__name")
            ):
                labels.setdefault(conversation_id, []).append(name)
            ratings = {
                conversation_id: (rating, comment)
                for conversation_id, rating, comment in SatisfactionRating.objects.filter(
                    workspace_id=workspace_id, conversation_id__in=ids
                ).values_list("conversation_id", "rating", "comment")
            }
            for conversation_id, created_at in chunk:
                c = conversations.get(conversation_id)
                if c is None:  # deleted since its facts were made
                    continue
                (
                    _pk,
                    number,
                    channel_id,
                    status,
                    priority,
                    team_id,
                    assignee_id,
                    fields,
                    name,
                    email,
                    phone,
                    attributes,
                ) = c
                m = figures.get(conversation_id, _NO_FIGURES)
                resolved = m[_RESOLVED]
                rating, comment = ratings.get(conversation_id, (None, ""))
                yield [
                    number,
                    created_at.astimezone(zone).replace(tzinfo=None),
                    channels.get(channel_id, ""),
                    name or email or phone,
                    statuses.get(status, status),
                    priorities.get(priority, priority),
                    teams.get(team_id, ""),
                    members.get(assignee_id, ""),
                    _seconds(m[_FIRST_S]),
                    _seconds(m[_FIRST_B]),
                    m[_ANSWERS],
                    resolved,
                    m[_REOPENED],
                    _seconds(m[_LAST_S]),
                    _seconds(m[_LAST_B]),
                    round(m[_REPLIES] / resolved, 2) if resolved else None,
                    m[_BOT],
                    m[_HANDOFF],
                    rating,
                    comment,
                    ", ".join(labels.get(conversation_id, ())),
                    _attributes(attributes),
                    _attributes(fields),
                ]

    return Table("conversations", headers, rows)


# ---------------------------------------------------------------------------------------------
# The report pages' tables


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _figure_columns() -> list[tuple[str, Callable[[dict], Cell]]]:
    """The figures of ``queries.derived`` as columns: counts, average durations in whole
    seconds (calendar and business), shares in percent."""
    return [
        (_("New conversations"), lambda f: f["created"]),
        (_("Resolutions"), lambda f: f["resolved"]),
        (_("Reopened"), lambda f: f["reopened"]),
        (_("Responses"), lambda f: f["first_responses"] + f["next_responses"]),
        (_("First responses"), lambda f: f["first_responses"]),
        (_("First response time (s)"), lambda f: _seconds(f["first_response_seconds"])),
        (
            _("First response time, business hours (s)"),
            lambda f: _seconds(f["first_response_business_seconds"]),
        ),
        (_("Next responses"), lambda f: f["next_responses"]),
        (_("Next response time (s)"), lambda f: _seconds(f["next_response_seconds"])),
        (
            _("Next response time, business hours (s)"),
            lambda f: _seconds(f["next_response_business_seconds"]),
        ),
        (_("Resolution time (s)"), lambda f: _seconds(f["resolution_seconds"])),
        (
            _("Resolution time, business hours (s)"),
            lambda f: _seconds(f["resolution_business_seconds"]),
        ),
        (_("Replies per resolution"), lambda f: _rounded(f["replies_per_resolution"])),
        (_("Resolved by the bot (%)"), lambda f: _percent(f["bot_resolved_share"])),
        (_("Handed over by the bot (%)"), lambda f: _percent(f["handoff_share"])),
        (_("Ratings"), lambda f: f["ratings"]),
        (_("Average rating (1-5)"), lambda f: _rounded(f["csat_average"])),
        (_("Customer satisfaction (%)"), lambda f: _percent(f["csat_score"])),
    ]


def overview_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The overview's figures per day of the range (``queries.series``), then a row with the
    range's totals (``queries.totals``)."""
    columns = _figure_columns()
    headers = [_("Day"), *(header for header, _value in columns)]
    total = _("Total")

    def rows() -> Iterator[list[Cell]]:
        for day, figures in queries.series(workspace_id, start, end, filters, by="day"):
            yield [day, *(value(figures) for _header, value in columns)]
        figures = queries.totals(workspace_id, start, end, filters)
        yield [total, *(value(figures) for _header, value in columns)]

    return Table("overview", headers, rows)


def agents_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The agents report (``queries.by_agent``): responses count for who replied, the rest for
    the conversation's assignee, and the time online; most responses first, as on the page."""
    columns = [
        *_figure_columns()[1:],  # no "New conversations": not the agents' figure
        (_("Online time (s)"), lambda f: _seconds(f["online_seconds"])),
    ]
    headers = [_("Agent"), *(header for header, _value in columns)]
    unassigned = _("Unassigned")

    def rows() -> Iterator[list[Cell]]:
        names = member_names(workspace_id)
        zone = _zone(Workspace.objects.values_list("time_zone", flat=True).get(pk=workspace_id))
        found = queries.by_agent(workspace_id, start, end, zone, filters)
        ordered = sorted(
            found.items(),
            key=lambda item: (
                -(item[1]["first_responses"] + item[1]["next_responses"]),
                names.get(item[0], ""),
            ),
        )
        for member_id, figures in ordered:
            name = unassigned if member_id is None else names.get(member_id, f"#{member_id}")
            yield [name, *(value(figures) for _header, value in columns)]

    return Table("agents", headers, rows)


def _breakdown(
    name: str,
    heading: str,
    figures: Callable[[], dict],
    names: Callable[[], dict[int, str]],
    *,
    none: str,
    removed: str,
    known_only: bool = False,
) -> Table:
    """Figures per channel, team or label, ordered as their pages order them: most new
    conversations first, then most resolutions, then by name; the row without one (``none``)
    last. ``known_only``: leave out ids the workspace no longer has."""
    columns = _figure_columns()
    headers = [heading, *(header for header, _value in columns)]

    def rows() -> Iterator[list[Cell]]:
        known = names()
        found = figures()
        if known_only:
            found = {key: f for key, f in found.items() if key is None or key in known}
        named = {key: none if key is None else known.get(key) or removed for key in found}
        for key in sorted(
            found,
            key=lambda key: (
                key is None,
                -found[key]["created"],
                -found[key]["resolved"],
                named[key].lower(),
            ),
        ):
            yield [named[key], *(value(found[key]) for _header, value in columns)]

    return Table(name, headers, rows)


def channels_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The channels report: the figures per channel (``queries.by_dimension``)."""
    return _breakdown(
        "channels",
        _("Channel"),
        lambda: queries.by_dimension(workspace_id, start, end, "channel_id", filters),
        lambda: _names(Channel, workspace_id),
        none=_("Removed channel"),
        removed=_("Removed channel"),
    )


def teams_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The teams report: the figures per team the conversations have now."""
    return _breakdown(
        "teams",
        _("Team"),
        lambda: queries.by_dimension(workspace_id, start, end, "team_id", filters),
        lambda: _names(Team, workspace_id),
        none=_("No team"),
        removed=_("Removed team"),
    )


def labels_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The labels report (``queries.by_label``): a conversation with two labels counts in
    both rows."""
    return _breakdown(
        "labels",
        _("Label"),
        lambda: queries.by_label(workspace_id, start, end, filters),
        lambda: _names(Label, workspace_id),
        none=_("No label"),
        removed=_("No label"),
        known_only=True,
    )


def busiest_hours_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """Conversations that came in (new or reopened) per weekday (rows, Monday first) and local
    hour (columns 00-23), with each weekday's total (``queries.heatmap``)."""
    days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    headers = [_("Day"), *(f"{hour:02d}" for hour in range(24)), _("Total")]

    def rows() -> Iterator[list[Cell]]:
        grid = queries.heatmap(workspace_id, start, end, filters)
        for day, counts in zip(days, grid, strict=True):
            yield [day, *counts, sum(counts)]

    return Table("busiest-hours", headers, rows)


def sla_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The SLA report (``sla_bots.sla``): per policy, then all policies, each target's
    achieved, breached and achieved share (%), and the same over all targets."""
    zone = _zone(Workspace.objects.get(pk=workspace_id).time_zone)
    targets = [(key, str(label)) for key, label in SlaTarget.choices]
    every = _("All targets")
    headers = [_("SLA policy")]
    for _key, label in [*targets, ("all", every)]:
        headers += [
            _("%(target)s: achieved") % {"target": label},
            _("%(target)s: breached") % {"target": label},
            _("%(target)s: achieved (%%)") % {"target": label},
        ]
    deleted, everything = _("A deleted policy"), _("All policies")

    def cells(figures: dict) -> list[Cell]:
        return [figures["met"], figures["breached"], _percent(figures["achieved_share"])]

    def rows() -> Iterator[list[Cell]]:
        found = sla_bots.sla(workspace_id, start, end, zone, filters)
        for policy in found["policies"]:
            row: list[Cell] = [policy["name"] or deleted]
            for key, _label in targets:
                row += cells(policy["targets"][key])
            yield row + cells(policy["all"])
        row = [everything]
        for key, _label in targets:
            row += cells(found["totals"][key])
        yield row + cells(found["all"])

    return Table("sla", headers, rows)


def bots_table(
    workspace_id: int, start: dt.date, end: dt.date, filters: Filters = EVERYTHING
) -> Table:
    """The bot funnel (``sla_bots.bots``), one row per flow, version and step: the flow's (or
    version's) sessions, how they ended and how many the bot resolved, then how many reached
    the step and were dropped there. "All versions" rows add up the flow's versions."""
    zone = _zone(Workspace.objects.get(pk=workspace_id).time_zone)
    ends = [(state, str(label)) for state, label in SessionState.choices]
    headers = [
        _("Flow"),
        _("Version"),
        _("Step"),
        _("Sessions"),
        *(label for _state, label in ends),
        _("Resolved by the bot"),
        _("Reached the step"),
        _("Reached the step (%)"),
        _("Dropped here"),
    ]
    all_versions = _("All versions")
    handoff = _("Hand-off (too many wrong answers, a failed lookup, or no FAQ answer)")

    def lines(flow: str, version: Cell, figures: dict) -> Iterator[list[Cell]]:
        common = [
            figures["started"],
            *(figures[state] for state, _label in ends),
            figures["bot_resolved"],
        ]
        for step in figures["steps"] or [None]:
            if step is None:
                yield [flow, version, None, *common, None, None, None]
                continue
            title = (
                handoff if step["step"] == sla_bots.HANDOFF_STEP else step["title"] or step["step"]
            )
            yield [
                flow,
                version,
                title,
                *common,
                step["reached"],
                _percent(step["reached_share"]),
                step["dropped"],
            ]

    def rows() -> Iterator[list[Cell]]:
        for flow in sla_bots.bots(workspace_id, start, end, zone, filters):
            yield from lines(flow["name"], all_versions, flow)
            for version in flow["versions"]:
                yield from lines(flow["name"], version["number"], version)

    return Table("bots", headers, rows)


def ratings_found(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    filters: Filters = EVERYTHING,
    *,
    comments_only: bool = False,
):
    """The ratings the range's customer satisfaction counts (newest first): the Ratings page's
    list."""
    behind = queries.conversations_behind(workspace_id, start, end, "ratings", filters)
    found = SatisfactionRating.objects.filter(
        workspace_id=workspace_id, conversation__in=behind.values("pk")
    ).order_by("-updated_at", "-pk")
    return found.exclude(comment="") if comments_only else found


def ratings_table(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    filters: Filters = EVERYTHING,
    *,
    comments_only: bool = False,
) -> Table:
    """The Ratings page's list: every rating with its comment, newest first, read in keyset
    chunks (``-updated_at, -pk``)."""
    zone = _zone(Workspace.objects.get(pk=workspace_id).time_zone)
    headers = [
        _("Rated at"),
        _("Rating (1-5)"),
        _("Comment"),
        _("Number"),
        _("Contact"),
        _("Assignee"),
        _("Channel"),
    ]

    def rows() -> Iterator[list[Cell]]:
        members = member_names(workspace_id)
        channels = _names(Channel, workspace_id)
        found = ratings_found(workspace_id, start, end, filters, comments_only=comments_only)
        fields = (
            "pk",
            "updated_at",
            "rating",
            "comment",
            "conversation__number",
            "conversation__contact__name",
            "conversation__contact__email",
            "conversation__assignee_id",
            "conversation__channel_id",
        )
        after = None
        while True:
            page = found
            if after is not None:
                page = page.filter(
                    Q(updated_at__lt=after[0]) | Q(updated_at=after[0], pk__lt=after[1])
                )
            chunk = list(page.values_list(*fields)[:CHUNK])
            for _pk, at, rating, comment, number, name, email, assignee, channel in chunk:
                yield [
                    _local(at, zone),
                    rating,
                    comment,
                    number,
                    name or email,
                    members.get(assignee, ""),
                    channels.get(channel, ""),
                ]
            if len(chunk) < CHUNK:
                break
            after = (chunk[-1][1], chunk[-1][0])

    return Table("ratings", headers, rows)


REPORTS = {
    "overview": overview_table,
    "agents": agents_table,
    "busiest-hours": busiest_hours_table,
    "channels": channels_table,
    "teams": teams_table,
    "labels": labels_table,
    "sla": sla_table,
    "bots": bots_table,
    "ratings": ratings_table,
    "conversations": conversation_table,
}
