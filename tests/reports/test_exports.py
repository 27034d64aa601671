"""Exports (loket.reports.exports): the per-conversation table and the report pages' tables on
hand-built data, CSV (byte order mark, quoting, no formula injection) and XLSX (a well-formed
workbook read back with zipfile and ElementTree: cell types, dates, the header row), streaming
(bytes leave before the rows are all read), workspace scoping, and a bounded number of queries
for 5,000 conversations."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from loket.inbox.models import Contact, Conversation, Label, Priority, SatisfactionRating
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.satisfaction import rate
from loket.reports import exports, rollups
from loket.reports.exports import Table, csv_chunks, xlsx_chunks
from loket.reports.models import FactKind, ReportFact
from loket.reports.queries import Filters
from tests import factories
from tests.reports.test_rollups import conversation_with

pytestmark = pytest.mark.django_db

START, END = dt.date(2026, 11, 9), dt.date(2026, 11, 15)  # Monday to Sunday
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Europe/Amsterdam"))


@pytest.fixture
def data(workspace, owner, agent, api_channel):
    workspace.time_zone = "Europe/Amsterdam"
    # Open from 09:15 on weekdays: the 09:00 message waited 15 business minutes of its 30.
    workspace.business_hours = {day: [["09:15", "17:00"]] for day in ("mon", "tue", "wed")}
    workspace.save(update_fields=["time_zone", "business_hours"])
    first = conversation_with(api_channel, owner, [at(10, 9), at(10, 9, 30)], resolve_at=at(10, 11))
    second = conversation_with(api_channel, agent, [at(11, 14), at(11, 14, 10)], contact="c-2")
    before = conversation_with(api_channel, owner, [at(3, 9), at(3, 10)], contact="c-3")
    update_conversation(first, actor=owner, assignee=owner)
    update_conversation(second, actor=agent, assignee=agent, priority=Priority.HIGH)
    vip = Label.objects.create(workspace=workspace, name="vip")
    billing = Label.objects.create(workspace=workspace, name="billing")
    first.labels.add(vip, billing)
    Conversation.objects.filter(pk=first.pk).update(custom_attributes={"order": "A-1", "n": 2})
    Contact.objects.filter(pk=first.contact_id).update(attributes={"plan": "gold"})
    Contact.objects.filter(pk=second.contact_id).update(name='=HYPERLINK("http://x")')
    first.refresh_from_db()
    rate(first, 5, 'Quick, and "friendly"\nthanks')
    SatisfactionRating.objects.update(updated_at=at(12, 10))
    # Another workspace's conversation on the same days never shows.
    other = factories.workspace("other")
    conversation_with(factories.api_channel(other), factories.owner_of(other), [at(10, 9)])
    rollups.rebuild(workspace.pk)
    rollups.rebuild(other.pk)
    return first, second, before, other


def rows_of(table: Table) -> list[dict]:
    return [dict(zip(table.headers, row, strict=True)) for row in table]


def test_the_conversation_table(workspace, owner, agent, api_channel, data):
    first, second, _before, _other = data
    rows = rows_of(exports.conversation_table(workspace.pk, START, END, Filters()))
    assert [row["Number"] for row in rows] == [first.number, second.number]  # day order
    one, two = rows
    assert one["Created at"] == dt.datetime(2026, 11, 10, 9, 0)  # Amsterdam time
    assert one["Channel"] == api_channel.name and one["Contact"] == "Customer"
    assert one["Status"] == "Resolved" and one["Priority"] == "None"
    assert one["Assignee"] == owner.display_name and one["Team"] == ""
    assert one["First response time (s)"] == 1800
    assert one["Responses"] == 1 and one["Resolutions"] == 1 and one["Reopened"] == 0
    assert one["Last resolution time (s)"] == 2 * 3600
    assert one["Replies per resolution"] == 1.0
    assert one["Resolved by the bot"] == 0 and one["Handed over by the bot"] == 0
    assert one["Rating (1-5)"] == 5 and one["Rating comment"].startswith("Quick, and")
    assert one["Labels"] == "billing, vip"
    # JSON objects as the database keeps them (key order is its own).
    assert json.loads(one["Contact attributes"]) == {"plan": "gold"}
    assert json.loads(one["Conversation fields"]) == {"n": 2, "order": "A-1"}
    assert two["Status"] == "Open" and two["Priority"] == "High"
    assert two["Assignee"] == agent.display_name and two["First response time (s)"] == 600
    assert two["Resolutions"] == 0 and two["Last resolution time (s)"] is None
    assert two["Replies per resolution"] is None and two["Rating (1-5)"] is None
    assert two["Labels"] == "" and two["Contact attributes"] == ""
    assert one["First response time, business hours (s)"] == 15 * 60
    assert one["Last resolution time, business hours (s)"] == 105 * 60  # 09:15 to 11:00


def test_filters_and_workspace_scoping(workspace, agent, api_channel, data):
    first, second, _before, other = data
    table = lambda filters: [  # noqa: E731
        row[0] for row in exports.conversation_table(workspace.pk, START, END, filters)
    ]
    assert table(Filters(member_id=agent.pk)) == [second.number]
    assert table(Filters(priority=Priority.HIGH)) == [second.number]
    assert table(Filters(channel_id=api_channel.pk)) == [first.number, second.number]
    theirs = factories.api_channel(other)
    assert table(Filters(channel_id=theirs.pk)) == []  # another workspace's id: nothing
    # The other workspace's own export holds only its conversation.
    assert len(list(exports.conversation_table(other.pk, START, END, Filters()))) == 1
    assert table(Filters()) == [first.number, second.number]
    assert exports.conversation_table(workspace.pk, START, END, Filters()).rows is not None


def test_the_report_tables(workspace, owner, agent, api_channel, data):
    first, _second, _before, _other = data
    overview = exports.overview_table(workspace.pk, START, END, Filters())
    rows = list(overview)
    assert len(rows) == 8 and rows[-1][0] == "Total"
    assert [row[0] for row in rows[:7]] == [START + dt.timedelta(days=n) for n in range(7)]
    named = dict(zip(overview.headers, rows[-1], strict=True))
    assert named["New conversations"] == 2 and named["Resolutions"] == 1
    assert named["First response time (s)"] == 1200  # (30 + 10) / 2 min
    assert named["Customer satisfaction (%)"] == 100.0 and named["Ratings"] == 1
    assert named["Resolved by the bot (%)"] == 0.0
    tuesday = dict(zip(overview.headers, rows[1], strict=True))
    assert (tuesday["New conversations"], tuesday["Resolutions"]) == (1, 1)

    agents = rows_of(exports.agents_table(workspace.pk, START, END, Filters()))
    by_name = {row["Agent"]: row for row in agents}
    assert by_name[owner.display_name]["First response time (s)"] == 1800
    assert by_name[agent.display_name]["First response time (s)"] == 600
    assert by_name[owner.display_name]["Resolutions"] == 1

    hours = exports.busiest_hours_table(workspace.pk, START, END, Filters())
    assert hours.headers[0] == "Day" and hours.headers[1] == "00" and hours.headers[-1] == "Total"
    grid = list(hours)
    assert [row[0] for row in grid] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert grid[1][1 + 9] == 1 and grid[2][1 + 14] == 1 and sum(row[-1] for row in grid) == 2

    channels = list(exports.channels_table(workspace.pk, START, END, Filters()))
    assert [row[:3] for row in channels] == [[api_channel.name, 2, 1]]
    teams = list(exports.teams_table(workspace.pk, START, END, Filters()))
    assert [row[:3] for row in teams] == [["No team", 2, 1]]
    labels = exports.labels_table(workspace.pk, START, END, Filters())
    assert labels.headers[:3] == ["Label", "New conversations", "Resolutions"]
    # Both labels of the first conversation, then the one without any, last.
    assert [row[:3] for row in labels] == [["billing", 1, 1], ["vip", 1, 1], ["No label", 1, 0]]

    ratings = rows_of(exports.ratings_table(workspace.pk, START, END, Filters()))
    assert len(ratings) == 1
    assert ratings[0]["Rating (1-5)"] == 5 and ratings[0]["Number"] == first.number
    assert ratings[0]["Rated at"] == dt.datetime(2026, 11, 12, 10, 0)
    assert ratings[0]["Assignee"] == owner.display_name
    none = exports.ratings_table(workspace.pk, START, END, Filters(member_id=agent.pk))
    assert list(none) == []


def test_csv(workspace, data):
    table = exports.conversation_table(workspace.pk, START, END, Filters())
    body = b"".join(csv_chunks(table))
    assert body.startswith(b"\xef\xbb\xbf")  # the byte order mark
    assert b"\r\n" in body
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == list(table.headers)
    one, two = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert one["Created at"] == "2026-11-10 09:00:00"
    assert one["Rating comment"] == 'Quick, and "friendly"\nthanks'  # quoted, round trip
    assert one["Last resolution time (s)"] == "7200"
    assert two["Contact"] == '\'=HYPERLINK("http://x")'  # no formula
    assert two["Last resolution time (s)"] == ""


def test_csv_injection_guard():
    risky = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "fine", "a=b", ""]
    table = Table("t", ["v", "n"], lambda: iter([[value, -5] for value in risky]))
    rows = list(csv.reader(io.StringIO(b"".join(csv_chunks(table)).decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == [
        "'=1+2",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "fine",
        "a=b",
        "",
    ]
    assert {row[1] for row in rows[1:]} == {"-5"}  # numbers stay numbers


def parse(data: bytes) -> ElementTree.Element:
    """Our own export's XML (trusted: the test made it)."""
    return ElementTree.fromstring(data)  # noqa: S314


def read_xlsx(body: bytes) -> tuple[zipfile.ZipFile, list[list[ElementTree.Element]]]:
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert {
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/worksheets/sheet1.xml",
    } <= names
    for name in names:  # every part is well-formed XML
        parse(archive.read(name))
    sheet = parse(archive.read("xl/worksheets/sheet1.xml"))
    rows = [row.findall("m:c", NS) for row in sheet.find("m:sheetData", NS).findall("m:row", NS)]
    return archive, rows


def text_of(cell: ElementTree.Element) -> str:
    assert cell.get("t") == "inlineStr"
    return cell.find("m:is/m:t", NS).text or ""


def test_xlsx_is_a_well_formed_workbook():
    when = dt.datetime(2026, 11, 10, 9, 30)
    table = Table(
        "Export: [a]/b",
        ["Text", "Int", "Float", "When", "Day", "None"],
        lambda: iter(
            [
                ["=1+2 <&> \x01ctl", 7, 1.5, when, dt.date(2026, 11, 10), None],
                ["  padded ", -3, float("nan"), None, None, None],
            ]
        ),
    )
    archive, rows = read_xlsx(b"".join(xlsx_chunks(table)))
    workbook = parse(archive.read("xl/workbook.xml"))
    assert workbook.find("m:sheets/m:sheet", NS).get("name") == "Export   a  b"
    header, first, second = rows
    assert [text_of(c) for c in header] == list(table.headers)
    assert {c.get("s") for c in header} == {"3"}  # bold
    # Cells in their places (no references): an empty one is <c/>, with no value.
    assert len(first) == 6 and first[5].get("t") is None and list(first[5]) == []
    assert text_of(first[0]) == "=1+2 <&> ctl"  # text, never a formula; control char gone
    assert first[1].get("t") is None and first[1].find("m:v", NS).text == "7"
    assert float(first[2].find("m:v", NS).text) == 1.5
    assert first[3].get("s") == "1"  # date and time format
    serial = float(first[3].find("m:v", NS).text)
    assert dt.datetime(1899, 12, 30) + dt.timedelta(days=serial) == pytest.approx(
        when, abs=dt.timedelta(seconds=1)
    )
    assert first[4].get("s") == "2" and first[4].find("m:v", NS).text == "46336"
    padded = second[0].find("m:is/m:t", NS)
    assert (
        padded.text == "  padded "
        and padded.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve"
    )
    assert len(second) == 6 and list(second[2]) == []  # NaN: an empty cell
    styles = parse(archive.read("xl/styles.xml"))
    assert styles.find("m:cellXfs", NS).get("count") == "4"


def test_xlsx_of_the_conversations(workspace, data):
    first, _second, _before, _other = data
    table = exports.conversation_table(workspace.pk, START, END, Filters())
    _archive, rows = read_xlsx(b"".join(xlsx_chunks(table)))
    assert len(rows) == 3 and all(len(row) == len(table.headers) for row in rows)
    number = rows[1][0]
    assert number.get("t") is None and number.find("m:v", NS).text == str(first.number)
    comment = rows[1][table.headers.index("Rating comment")]
    assert text_of(comment) == 'Quick, and "friendly"\nthanks'


def test_both_stream_before_the_rows_are_read():
    read = []

    def rows():
        for n in range(3 * exports.BATCH):
            read.append(n)
            yield [f"row {n}", n]

    for chunks in (csv_chunks, xlsx_chunks):
        read.clear()
        table = Table("t", ["a", "b"], rows)
        stream = chunks(table)
        got = []
        for chunk in stream:
            got.append(chunk)
            if len(read) and len(read) < 3 * exports.BATCH and any(got[1:]):
                break  # bytes of rows came out while rows were still unread
        else:
            pytest.fail(f"{chunks.__name__} read every row before yielding them")
        stream.close()


def test_a_big_export_reads_in_chunks(workspace, api_channel, django_assert_max_num_queries):
    """5,000 conversations on one day: a handful of queries per 2,000 rows, whatever the
    number of rows."""
    contact = Contact.objects.create(workspace=workspace, name="Many")
    now = timezone.now()
    made = Conversation.objects.bulk_create(
        Conversation(
            workspace=workspace, channel=api_channel, contact=contact, number=n, created_at=now
        )
        for n in range(1, 5001)
    )
    day = dt.date(2026, 11, 10)
    facts = []
    for conversation in made:
        common = {"workspace": workspace, "conversation": conversation, "day": day, "hour": 9}
        facts.append(ReportFact(kind=FactKind.CREATED, at=at(10, 9), **common))
        facts.append(
            ReportFact(kind=FactKind.RESOLVED, at=at(10, 10), seconds=3600, responses=2, **common)
        )
    ReportFact.objects.bulk_create(facts, batch_size=2000)
    label = Label.objects.create(workspace=workspace, name="bulk")
    label.conversations.add(*made[:10])
    table = exports.conversation_table(workspace.pk, START, END, Filters())
    with django_assert_max_num_queries(5 + 5 * 3 + 1):
        count = sum(1 for _row in table)
    assert count == 5000
    with django_assert_max_num_queries(5 + 5 * 3 + 1):
        body = b"".join(csv_chunks(table))
    assert body.count(b"\r\n") == 5001
