"""The breakdown report pages: per channel and per team (from the rollups) and per label (the
facts joined to the labels conversations carry now), each with the agents page's figures in
calendar or business time, every number linking to the conversations behind it; never another
workspace's channels, teams or labels; for supervisors, admins and owners; in Dutch too."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.models import Label, SatisfactionRating
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.satisfaction import rate
from loket.reports import queries, rollups
from loket.tenancy.models import Team
from tests import factories
from tests.reports.test_rollups import conversation_with
from tests.workspace_settings.conftest import signed_in

pytestmark = pytest.mark.django_db

AMS = ZoneInfo("Europe/Amsterdam")
RANGE = "from=2026-11-09&to=2026-11-15"  # Monday to Sunday
COLUMNS = (
    "created",
    "resolved",
    "reopened",
    "first_response",
    "next_response",
    "resolution",
    "replies_per_resolution",
    "bot_resolved_share",
    "handoff_share",
    "csat",
)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=AMS)


@pytest.fixture
def data(workspace, owner, agent, api_channel):
    """Three conversations in the week of the 9th and one the week before:

    - ``resolved`` (channel API, team Support, labels Billing and Urgent): Tuesday 09:00,
      answered 09:30, resolved 11:00.
    - ``waiting`` (channel Webshop, no team, label Billing): Wednesday 14:00, answered 14:10.
    - ``early`` (channel API, team Support, no label): Thursday 08:00, answered 09:00, an hour
      before the office opens (09:00-17:00 on weekdays): no business time.
    """
    workspace.time_zone = "Europe/Amsterdam"
    workspace.business_hours = {
        day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    }
    workspace.save(update_fields=["time_zone", "business_hours"])
    webshop = factories.api_channel(workspace, name="Webshop")
    support = Team.objects.create(workspace=workspace, name="Support")
    billing = Label.objects.create(workspace=workspace, name="Billing")
    urgent = Label.objects.create(workspace=workspace, name="Urgent")
    resolved = conversation_with(
        api_channel, owner, [at(10, 9), at(10, 9, 30)], resolve_at=at(10, 11)
    )
    waiting = conversation_with(webshop, agent, [at(11, 14), at(11, 14, 10)], contact="c-2")
    early = conversation_with(api_channel, owner, [at(12, 8), at(12, 9)], contact="c-3")
    before = conversation_with(api_channel, owner, [at(3, 10), at(3, 11)], contact="c-4")
    update_conversation(resolved, actor=owner, team=support, labels=[billing, urgent])
    update_conversation(waiting, actor=owner, labels=[billing])
    update_conversation(early, actor=owner, team=support)
    update_conversation(before, actor=owner, team=support, labels=[billing])
    # Another workspace in the same days: its channel, team and label never show here.
    other = factories.workspace("other")
    theirs = factories.api_channel(other, name="Their channel")
    their_owner = factories.owner_of(other)
    their_team = Team.objects.create(workspace=other, name="Their team")
    their_label = Label.objects.create(workspace=other, name="Their label")
    foreign = conversation_with(theirs, their_owner, [at(10, 9), at(10, 9, 5)], contact="t-1")
    update_conversation(foreign, actor=their_owner, team=their_team, labels=[their_label])
    rollups.catch_up()
    return {
        "resolved": resolved,
        "waiting": waiting,
        "early": early,
        "before": before,
        "webshop": webshop,
        "support": support,
        "billing": billing,
        "urgent": urgent,
        "theirs": theirs,
        "their_team": their_team,
        "their_label": their_label,
    }


def page(client, path: str) -> str:
    response = client.get(f"/w/acme/reports/{path}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def table(html: str) -> dict[str, dict[str, tuple[str, str]]]:
    """``{row name: {figure: (shown value, link)}}`` of the breakdown table."""
    body = html[html.index('id="breakdown"') :]
    body = body[: body.index("</table>")]
    rows = {}
    for name, cells in re.findall(r'<tr>\s*<th scope="row">([^<]+)</th>(.*?)</tr>', body, re.S):
        rows[htmllib.unescape(name)] = {
            key: (htmllib.unescape(value), htmllib.unescape(url))
            for key, url, value in re.findall(
                r'<td data-figure="([a-z_]+)"><a href="([^"]+)"[^>]*>([^<]*)</a>'
                r'(?:<span class="detail">[^<]*</span>)?</td>',
                cells,
            )
        }
    return rows


def values(row: dict) -> tuple[str, ...]:
    return tuple(row[key][0] for key in COLUMNS)


def behind(client, url: str) -> set[int]:
    """The conversation numbers the drill-down at ``url`` lists."""
    response = client.get(url)
    assert response.status_code == 200
    found = response.content.decode()
    found = found[found.index('id="behind"') :]
    return {int(n) for n in re.findall(r">#(\d+)</a>", found)}


def test_only_supervisors_admins_and_owners(workspace, owner, agent, supervisor, admin):
    for path in ("channels/", "teams/", "labels/"):
        assert signed_in(agent).get(f"/w/acme/reports/{path}").status_code == 403
        for member in (owner, admin, supervisor):
            assert signed_in(member).get(f"/w/acme/reports/{path}").status_code == 200
    other = factories.workspace("other")
    assert signed_in(factories.owner_of(other)).get("/w/acme/reports/teams/").status_code == 404


def test_per_channel(supervisor, data):
    client = signed_in(supervisor)
    rows = table(page(client, f"channels/?{RANGE}"))
    assert set(rows) == {"API", "Webshop"}  # never "Their channel"
    # API: two new (Tuesday, Thursday), one resolved in 2 h; first responses 30 and 60 min.
    assert values(rows["API"]) == (
        "2", "1", "0", "45 min", "\u2013", "2 h 0 min", "1.0", "0%", "0%", "\u2013"
    )  # fmt: skip
    assert values(rows["Webshop"]) == (
        "1", "0", "0", "10 min", "\u2013", "\u2013", "\u2013", "\u2013", "\u2013", "\u2013"
    )  # fmt: skip
    # Every number links to the conversations behind it, with the page's range.
    created = rows["API"]["created"][1]
    assert "from=2026-11-09" in created and f"channel={data['resolved'].channel_id}" in created
    assert behind(client, created) == {data["resolved"].number, data["early"].number}
    assert behind(client, rows["API"]["resolution"][1]) == {data["resolved"].number}
    assert behind(client, rows["Webshop"]["first_response"][1]) == {data["waiting"].number}
    # A rating: its share of 4s and 5s, with how many and their average under it.
    rate(data["resolved"], 4, "")
    SatisfactionRating.objects.update(updated_at=at(13, 10))
    rollups.rebuild(data["resolved"].workspace_id)
    html = page(client, f"channels/?{RANGE}")
    assert table(html)["API"]["csat"][0] == "100%"
    assert '>100%</a><span class="detail">1 rating, 4.0/5</span>' in html
    assert table(html)["Webshop"]["csat"][0] == "\u2013"
    assert behind(client, table(html)["API"]["csat"][1]) == {data["resolved"].number}
    # Business time: the early answer came before the office opened.
    business = table(page(client, f"channels/?{RANGE}&clock=business"))
    assert business["API"]["first_response"][0] == "15 min"  # (30 + 0) / 2
    assert "clock=business" in business["API"]["created"][1]


def test_per_team(supervisor, data):
    client = signed_in(supervisor)
    rows = table(page(client, f"teams/?{RANGE}"))
    assert set(rows) == {"Support", "No team"}  # never "Their team"
    assert list(rows) == ["Support", "No team"]  # the unteamed row last
    assert values(rows["Support"])[:7] == ("2", "1", "0", "45 min", "\u2013", "2 h 0 min", "1.0")
    assert values(rows["No team"])[:4] == ("1", "0", "0", "10 min")
    assert behind(client, rows["Support"]["created"][1]) == {
        data["resolved"].number,
        data["early"].number,
    }
    no_team = rows["No team"]["created"][1]
    assert "no_team=1" in no_team
    assert behind(client, no_team) == {data["waiting"].number}
    # The drill-down keeps "no team" through its filter form.
    assert '<input type="hidden" name="no_team" value="1">' in page(
        client, no_team.removeprefix("/w/acme/reports/")
    )
    # Filtered by a team: only its row.
    only = table(page(client, f"teams/?{RANGE}&team={data['support'].pk}"))
    assert set(only) == {"Support"}


def test_per_label(supervisor, data):
    client = signed_in(supervisor)
    html = page(client, f"labels/?{RANGE}")
    assert "a conversation with two labels counts in both rows" in html  # the definition
    rows = table(html)
    assert set(rows) == {"Billing", "Urgent", "No label"}  # never "Their label"
    # Billing: the resolved one (30 min) and the waiting one (10 min), not the week before's.
    assert values(rows["Billing"])[:7] == ("2", "1", "0", "20 min", "\u2013", "2 h 0 min", "1.0")
    assert values(rows["Urgent"])[:7] == ("1", "1", "0", "30 min", "\u2013", "2 h 0 min", "1.0")
    assert values(rows["No label"])[:7] == (
        "1", "0", "0", "1 h 0 min", "\u2013", "\u2013", "\u2013"
    )  # fmt: skip
    business = table(page(client, f"labels/?{RANGE}&clock=business"))
    assert business["No label"]["first_response"][0] == "0 min"
    billing = rows["Billing"]["created"][1]
    assert f"label={data['billing'].pk}" in billing
    assert behind(client, billing) == {data["resolved"].number, data["waiting"].number}
    assert "Billing" in page(client, billing.removeprefix("/w/acme/reports/"))  # the title
    assert behind(client, rows["No label"]["created"][1]) == {data["early"].number}
    assert behind(client, rows["Urgent"]["resolved"][1]) == {data["resolved"].number}
    # The page's filters apply: only the Webshop channel.
    webshop = table(page(client, f"labels/?{RANGE}&channel={data['webshop'].pk}"))
    assert set(webshop) == {"Billing"} and values(webshop["Billing"])[:4] == (
        "1",
        "0",
        "0",
        "10 min",
    )


def test_by_label_reads_the_facts_in_one_grouped_query(workspace, data):
    start, end = dt.date(2026, 11, 9), dt.date(2026, 11, 15)
    with CaptureQueriesContext(connection) as captured:
        found = queries.by_label(workspace.pk, start, end)
    assert len(captured) == 1
    assert found[data["urgent"].pk]["created"] == 1 and found[None]["created"] == 1
    # A conversation's figures per label sum as the rollups do: the unlabelled and the Urgent
    # row together are the API channel's figures (Urgent's conversation is the API's other).
    api = queries.by_dimension(workspace.pk, start, end, "channel_id")[data["early"].channel_id]
    assert found[None]["created"] + found[data["urgent"].pk]["created"] == api["created"]
    # It reads the range's facts through their index (workspace, day, kind).
    grouped = queries.label_rows(workspace.pk, start, end)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # as with many rows
    assert "report_fact_ws_day" in grouped.explain()


def test_another_workspaces_ids_show_nothing_of_theirs(supervisor, data):
    client = signed_in(supervisor)
    # Their channel or team in a filter is ignored (as on every report page): ours show.
    rows = table(page(client, f"channels/?{RANGE}&channel={data['theirs'].pk}"))
    assert set(rows) == {"API", "Webshop"}
    rows = table(page(client, f"teams/?{RANGE}&team={data['their_team'].pk}"))
    assert set(rows) == {"Support", "No team"}
    # Their label in a filter is ignored too: the drill-down lists ours, never theirs.
    url = f"conversations/?{RANGE}&figure=created&label={data['their_label'].pk}"
    ours = {data[name].number for name in ("resolved", "waiting", "early")}
    assert behind(client, f"/w/acme/reports/{url}") == ours
    assert "Their label" not in page(client, url)


def test_dutch(supervisor, data):
    supervisor.user.locale = "nl"
    supervisor.user.save(update_fields=["locale"])
    client = signed_in(supervisor)
    html = page(client, f"teams/?{RANGE}")
    assert "<h1>Teams</h1>" in html and ">Kanalen</a>" in html  # the navigation, in Dutch
    assert "Geen team" in table(html)
    labels = page(client, f"labels/?{RANGE}")
    assert "Billing" in table(labels)


def test_queries_do_not_grow_with_the_data(supervisor, owner, api_channel, data):
    client = signed_in(supervisor)

    def count(path):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/w/acme/reports/{path}?{RANGE}").status_code == 200
        return len(captured)

    paths = ("channels/", "teams/", "labels/")
    before = {path: count(path) for path in paths}
    extra = Label.objects.create(workspace=owner.workspace, name="Extra")
    for n in range(6):
        made = conversation_with(
            api_channel, owner, [at(13, 9 + n), at(13, 9 + n, 5)], contact=f"x-{n}"
        )
        update_conversation(made, actor=owner, labels=[extra, data["billing"]])
    rollups.catch_up()
    assert {path: count(path) for path in paths} == before


def test_the_label_filter_on_every_figure(workspace, owner, supervisor, data):
    """A label filter sums the facts of the labelled conversations (the rollups have no label),
    giving exactly the labels report's row; the pages, drill-down, downloads and API take it."""
    from loket.reports import exports
    from loket.reports.queries import Filters

    start, end = dt.date(2026, 11, 9), dt.date(2026, 11, 15)
    billing = data["billing"].pk
    only = Filters(label_id=billing)
    assert (
        queries.totals(workspace.pk, start, end, only)
        == (queries.by_label(workspace.pk, start, end)[billing])
    )
    assert queries.totals(workspace.pk, start, end, only)["created"] == 2
    days = dict(queries.series(workspace.pk, start, end, only))
    assert (days[dt.date(2026, 11, 10)]["created"], days[dt.date(2026, 11, 11)]["created"]) == (
        1,
        1,
    )
    agents = queries.by_agent(workspace.pk, start, end, AMS, only)
    assert sum(f["first_responses"] for f in agents.values()) == 2
    grid = queries.heatmap(workspace.pk, start, end, only)
    assert sum(map(sum, grid)) == 2 and grid[1][9] == 1 and grid[2][14] == 1
    webshop = Filters(label_id=billing, channel_id=data["webshop"].pk)
    assert queries.totals(workspace.pk, start, end, webshop)["created"] == 1

    client = signed_in(supervisor)
    html = page(client, f"?{RANGE}&label={billing}")
    assert f'<option value="{billing}" selected>Billing</option>' in html
    tile = re.search(r'data-figure="created".*?href="([^"]+)"[^>]*>(\d+)<', html, re.S)
    assert tile.group(2) == "2" and f"label={billing}" in htmllib.unescape(tile.group(1))
    wanted = {data["resolved"].number, data["waiting"].number}
    assert behind(client, htmllib.unescape(tile.group(1))) == wanted
    download = client.get(f"/w/acme/reports/export/conversations.csv?{RANGE}&label={billing}")
    assert len(b"".join(download.streaming_content).decode().strip().splitlines()) == 1 + 2
    table_rows = list(exports.conversation_table(workspace.pk, start, end, only))
    assert len(table_rows) == 2
    api = factories.ApiClient(owner).get(f"/reports/overview?{RANGE}&label_id={billing}")
    assert api.json()["totals"]["created"] == 2


def test_every_number_of_the_agents_overview_and_hours_pages_links_to_its_conversations(
    owner, supervisor, data
):
    client = signed_in(supervisor)
    agents = page(client, f"agents/?{RANGE}")
    body = agents[agents.index('id="agents-table"') :]
    row = body[body.index(owner.display_name) :]
    row = row[: row.index("</tr>")]
    links = [htmllib.unescape(url) for url in re.findall(r'href="([^"]+)"', row)]
    figures = [re.search(r"figure=([a-z_]+)", url).group(1) for url in links]
    assert figures == [
        "responses", "first_responses", "next_responses", "resolved", "resolved", "resolved",
        "ratings",
    ]  # fmt: skip
    # The owner responded in "resolved" and "early" this week; nobody was assigned, so the
    # resolution is the Unassigned row's, and its link lists only that one.
    mine = {data["resolved"].number, data["early"].number}
    assert behind(client, links[0]) == mine and behind(client, links[1]) == mine
    assert behind(client, links[3]) == set()
    unassigned = body[body.index("Unassigned") :]
    unassigned = unassigned[: unassigned.index("</tr>")]
    resolved = htmllib.unescape(re.findall(r'href="([^"]+)"', unassigned)[3])
    assert "unassigned=1" in resolved
    assert behind(client, resolved) == {data["resolved"].number}

    overview = page(client, f"?{RANGE}")
    tuesday = re.search(r'<th scope="row">2026-11-10</th><td><a href="([^"]+)">1<', overview)
    assert behind(client, htmllib.unescape(tuesday.group(1))) == {data["resolved"].number}

    hours = page(client, f"busiest-hours/?{RANGE}")
    cells = re.findall(r'<td class="l\d"><a href="([^"]+)">(\d+)</a></td>', hours)
    assert len(cells) == 3  # Tuesday 9:00, Wednesday 14:00, Thursday 8:00
    wednesday = next(url for url, n in cells if "weekday=2" in url)
    assert "hour=14" in wednesday
    assert behind(client, htmllib.unescape(wednesday)) == {data["waiting"].number}
    assert "Wed 14:00" in page(client, htmllib.unescape(wednesday).removeprefix("/w/acme/reports/"))
