"""The report downloads (/w/<slug>/reports/export/<report>.<csv|xlsx>): for supervisors, admins
and owners like the pages, streamed as attachments named after the range, the page's filters
applied (another workspace's id matches nothing), unreadable filters refused with a reason, the
links on every report page, and a stream served chunk by chunk under ASGI too."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile

import pytest
from django.core.handlers.asgi import ASGIRequest

from loket.reports.exports import Table
from loket.web.reports.exports import _pulled, download
from tests import factories
from tests.reports.test_exports import data, parse  # noqa: F401 - the fixture
from tests.workspace_settings.conftest import signed_in

pytestmark = pytest.mark.django_db

RANGE = "from=2026-11-09&to=2026-11-15"


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_who_may_download(workspace, owner, agent, supervisor, data):  # noqa: F811
    path = f"/w/acme/reports/export/overview.csv?{RANGE}"
    assert signed_in(agent).get(path).status_code == 403
    assert signed_in(supervisor).get(path).status_code == 200
    assert signed_in(owner).get(path).status_code == 200
    other = factories.workspace("other-ws")
    assert signed_in(factories.owner_of(other)).get(path).status_code == 404
    assert signed_in(owner).get(f"/w/acme/reports/export/secrets.csv?{RANGE}").status_code == 404
    assert signed_in(owner).get(f"/w/acme/reports/export/overview.pdf?{RANGE}").status_code == 404


def test_the_conversations_download(workspace, supervisor, agent, data):  # noqa: F811
    first, second, _before, other = data
    client = signed_in(supervisor)
    response = client.get(f"/w/acme/reports/export/conversations.csv?{RANGE}")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="loket-conversations-2026-11-09-2026-11-15.csv"'
    )
    rows = rows_of(response)
    assert rows[0][:3] == ["Number", "Created at", "Channel"]
    assert [row[0] for row in rows[1:]] == [str(first.number), str(second.number)]
    only_agent = rows_of(
        client.get(f"/w/acme/reports/export/conversations.csv?{RANGE}&agent={agent.pk}")
    )
    assert [row[0] for row in only_agent[1:]] == [str(second.number)]
    # Another workspace's channel: nothing (not everything).
    theirs = factories.api_channel(other)
    none = rows_of(
        client.get(f"/w/acme/reports/export/conversations.csv?{RANGE}&channel={theirs.pk}")
    )
    assert len(none) == 1

    xlsx = client.get(f"/w/acme/reports/export/conversations.xlsx?{RANGE}")
    assert xlsx.streaming and xlsx["Content-Type"].endswith("spreadsheetml.sheet")
    assert xlsx["Content-Disposition"].endswith('-2026-11-15.xlsx"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(xlsx.streaming_content)))
    sheet = parse(archive.read("xl/worksheets/sheet1.xml"))
    assert len(sheet.findall(".//{*}row")) == 3


def test_the_report_downloads(workspace, supervisor, data):  # noqa: F811
    client = signed_in(supervisor)
    overview = rows_of(client.get(f"/w/acme/reports/export/overview.csv?{RANGE}"))
    assert overview[1][0] == "2026-11-09" and overview[-1][0] == "Total"
    assert overview[-1][1] == "2"  # new conversations
    hours = rows_of(client.get(f"/w/acme/reports/export/busiest-hours.csv?{RANGE}"))
    assert len(hours) == 8 and hours[2][1 + 9] == "1"
    agents = rows_of(client.get(f"/w/acme/reports/export/agents.csv?{RANGE}"))
    assert agents[0][0] == "Agent" and len(agents) == 3
    labels = rows_of(client.get(f"/w/acme/reports/export/labels.csv?{RANGE}"))
    assert [row[:2] for row in labels] == [
        ["Label", "New conversations"],
        ["billing", "1"],
        ["vip", "1"],
        ["No label", "1"],
    ]
    ratings = rows_of(client.get(f"/w/acme/reports/export/ratings.csv?{RANGE}&comments=1"))
    assert len(ratings) == 2 and ratings[1][1] == "5"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("from=yesterday", "'from' is not a date"),
        ("from=2026-11-15&to=2026-11-09", "starts after it ends"),
        ("from=2024-01-01&to=2026-11-09", "At most 366 days"),
        ("channel=abc", "'channel' is not a number"),
        ("priority=9", "'priority' is not one of the priorities"),
    ],
)
def test_bad_filters_are_refused(workspace, supervisor, query, reason):
    response = signed_in(supervisor).get(f"/w/acme/reports/export/conversations.csv?{query}")
    assert response.status_code == 400
    assert reason in response.content.decode()


def test_the_links_on_the_pages(workspace, supervisor, data):  # noqa: F811
    client = signed_in(supervisor)
    for path, report in (
        ("", "overview"),
        ("agents/", "agents"),
        ("busiest-hours/", "busiest-hours"),
        ("ratings/", "ratings"),
        ("channels/", "channels"),
        ("teams/", "teams"),
        ("labels/", "labels"),
        ("sla/", "sla"),
        ("bots/", "bots"),
    ):
        html = client.get(f"/w/acme/reports/{path}?{RANGE}").content.decode()
        assert (
            f'href="/w/acme/reports/export/{report}.csv?from=2026-11-09&amp;to=2026-11-15"' in html
        )
        assert f"/w/acme/reports/export/{report}.xlsx?" in html
        assert "/w/acme/reports/export/conversations.csv?from=2026-11-09" in html
        assert "Export conversations (XLSX)" in html


def test_served_chunk_by_chunk_under_asgi():
    pulled = []

    def rows():
        for n in range(3):
            pulled.append(n)
            yield [n]

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    request = ASGIRequest(scope, io.BytesIO())
    response = download(request, Table("t", ["n"], rows), "csv", "t.csv")
    assert response.is_async  # Django would read a synchronous stream whole first

    closed = []

    def chunks():
        try:
            yield from (b"a", b"b", b"c")
        finally:
            closed.append(True)

    async def first_two():
        stream = _pulled(chunks())
        got = [await anext(stream), await anext(stream)]
        assert not closed
        await stream.aclose()
        return got

    assert asyncio.run(first_two()) == [b"a", b"b"] and closed == [True]

    async def everything():
        return [chunk async for chunk in response.streaming_content]

    body = b"".join(asyncio.run(everything())).decode("utf-8-sig")
    assert body.split("\r\n") == ["n", "0", "1", "2", ""] and pulled == [0, 1, 2]


def test_in_the_members_language(workspace, supervisor, data):  # noqa: F811
    supervisor.user.locale = "nl"
    supervisor.user.save(update_fields=["locale"])
    client = signed_in(supervisor)
    overview = rows_of(client.get(f"/w/acme/reports/export/overview.csv?{RANGE}"))
    assert overview[0][:3] == ["Dag", "Nieuwe gesprekken", "Oplossingen"]
    assert overview[-1][0] == "Totaal"
    hours = rows_of(client.get(f"/w/acme/reports/export/busiest-hours.csv?{RANGE}"))
    assert [row[0] for row in hours[1:3]] == ["ma", "di"]
    teams = rows_of(client.get(f"/w/acme/reports/export/teams.csv?{RANGE}"))
    assert teams[1][0] == "Geen team"
