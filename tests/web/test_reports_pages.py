"""The report pages: for supervisors, admins and owners only; the overview's figures with their
definitions, change against the period before and a link to the conversations behind each;
the agents table; the busiest-hours grid; filters (another workspace's ids ignored, a bad range
explained); and a page's queries do not grow with the data."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.models import SatisfactionRating
from loket.reports import rollups
from tests import factories
from tests.reports.test_rollups import conversation_with
from tests.workspace_settings.conftest import signed_in

pytestmark = pytest.mark.django_db

AMS = ZoneInfo("Europe/Amsterdam")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=AMS)


RANGE = "from=2026-11-09&to=2026-11-15"  # Monday to Sunday; the 10th is a Tuesday


@pytest.fixture
def data(workspace, owner, agent, api_channel):
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save(update_fields=["time_zone"])
    made = [
        conversation_with(api_channel, owner, [at(10, 9), at(10, 9, 30)], resolve_at=at(10, 11)),
        conversation_with(api_channel, agent, [at(11, 14), at(11, 14, 10)], contact="c-2"),
        # The week before, for the comparison: a slower first response.
        conversation_with(api_channel, owner, [at(3, 9), at(3, 10)], contact="c-3"),
    ]
    rollups.catch_up()
    return made


def page(client, path: str) -> str:
    response = client.get(f"/w/acme/reports/{path}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_only_supervisors_admins_and_owners(workspace, owner, agent, supervisor):
    assert signed_in(agent).get("/w/acme/reports/").status_code == 403
    for member in (owner, supervisor):
        for path in ("", "agents/", "busiest-hours/", "conversations/"):
            assert signed_in(member).get(f"/w/acme/reports/{path}").status_code == 200
    other = factories.workspace("other")
    assert signed_in(factories.owner_of(other)).get("/w/acme/reports/").status_code == 404


def test_the_overview(supervisor, data):
    html = page(signed_in(supervisor), f"?{RANGE}")
    tile = lambda key: re.search(  # noqa: E731
        rf'data-figure="{key}".*?class="value" href="([^"]+)"[^>]*>([^<]+)</a>(.*?)</section>',
        html,
        re.S,
    )
    created = tile("created")
    assert created[2] == "2"
    first = tile("first_response")
    assert first[2] == "20 min"  # (30 + 10) / 2
    assert "-67%" in first[3]  # 60 min the week before
    assert 'class="change small good"' in first[3]  # faster is better
    assert "the first reply by a person" in first[3]  # its definition
    assert tile("resolved")[2] == "1" and tile("bot_resolved_share")[2] == "0%"
    # The number links to the conversations behind it.
    behind = signed_in(supervisor).get(created[1].replace("&amp;", "&")).content.decode()
    assert f"#{data[0].number}" in behind and f"#{data[1].number}" in behind
    assert f"#{data[2].number}" not in behind  # the week before
    # The chart's data and the accessible table carry the same numbers.
    assert '"created": [0, 1, 1, 0, 0, 0, 0]' in html
    day = re.search(r'<th scope="row">2026-11-10</th>(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td><a href="[^"]+">([^<]+)</a></td>', day) == ["1", "1", "30 min"]


def test_business_hours_and_filters(supervisor, agent, data, api_channel):
    client = signed_in(supervisor)
    html = page(client, f"?{RANGE}&clock=business&agent={agent.pk}")
    # Responses count for who replied (the agent's 10 min); the rest for the assignee (none).
    assert re.search(r'data-figure="first_response".*?class="value"[^>]*>10 min<', html, re.S)
    assert re.search(r'data-figure="created".*?class="value"[^>]*>0<', html, re.S)
    other = factories.workspace("other")
    theirs = factories.api_channel(other)
    # Another workspace's channel is ignored as if not given.
    assert re.search(
        r'data-figure="created".*?class="value"[^>]*>2<',
        page(client, f"?{RANGE}&channel={theirs.pk}"),
        re.S,
    )
    mine = page(client, f"?{RANGE}&channel={api_channel.pk}")
    assert re.search(r'data-figure="created".*?class="value"[^>]*>2<', mine, re.S)
    backwards = page(client, "?from=2026-11-15&to=2026-11-09")
    assert "The range starts after it ends" in backwards


def test_agents_and_busiest_hours(supervisor, owner, agent, data):
    client = signed_in(supervisor)
    html = page(client, f"agents/?{RANGE}")
    rows = re.findall(
        r'<tr>\s*<th scope="row">([^<]+)</th><td><a [^>]+>(\d+)</a></td><td><a [^>]+>([^<]+)</a>',
        html,
    )
    assert (owner.display_name, "1", "30 min") in rows
    assert (agent.display_name, "1", "10 min") in rows
    heat = page(client, f"busiest-hours/?{RANGE}")
    table = heat[heat.index('id="heatmap"') :]
    tuesday = re.search(r'<th scope="row">Tue</th>(.*?)</tr>', table, re.S)[1]
    cells = re.findall(r'<td class="l(\d)">(?:<a [^>]+>)?(\d*)(?:</a>)?</td>', tuesday)
    assert cells[9] == ("5", "1") and sum(int(n or 0) for _, n in cells) == 1
    assert "2 conversations came in" in heat


def test_queries_do_not_grow_with_the_data(supervisor, owner, api_channel, data):
    client = signed_in(supervisor)

    def count(path):
        with CaptureQueriesContext(connection) as captured:
            client.get(f"/w/acme/reports/{path}")
        return len(captured)

    before = {path: count(path) for path in ("", "agents/", "busiest-hours/")}
    for n in range(8):
        conversation_with(api_channel, owner, [at(12, 9 + n), at(12, 9 + n, 5)], contact=f"x-{n}")
    rollups.catch_up()
    assert {path: count(path) for path in before} == before


def test_ratings_in_the_reports(supervisor, owner, agent, data):
    from loket.inbox.services.conversations import update_conversation
    from loket.inbox.services.satisfaction import rate

    first, second, _before = data
    update_conversation(second, actor=agent, team=None, assignee=agent)
    update_conversation(second, actor=agent, status="resolved")
    update_conversation(first, actor=owner, assignee=owner)
    first.refresh_from_db()
    second.refresh_from_db()
    rate(first, 5, "Quick and friendly")
    rate(second, 2, "")
    # Rated on the 12th (a rating counts on the day it was last given).
    SatisfactionRating.objects.update(updated_at=at(12, 10))
    rollups.rebuild(first.workspace_id)
    client = signed_in(supervisor)
    html = page(client, f"?{RANGE}")
    assert re.search(
        r'data-figure="csat".*?class="value"[^>]*>50%</a>\s*<span[^>]*>2 ratings, 3.5/5<',
        html,
        re.S,
    )
    agents = page(client, f"agents/?{RANGE}")
    rating = r'<td><a [^>]+>{}</a><span class="detail">{}</span></td>'
    assert re.search(
        rf"{owner.display_name}</th>.*?" + rating.format("100%", "1 rating, 5.0/5"), agents, re.S
    )
    assert re.search(
        rf"{agent.display_name}</th>.*?" + rating.format("0%", "1 rating, 2.0/5"), agents, re.S
    )
    ratings = page(client, f"ratings/?{RANGE}")
    assert "Quick and friendly" in ratings and f">#{second.number}</a>" in ratings
    with_comment = page(client, f"ratings/?{RANGE}&comments=1")
    assert "Quick and friendly" in with_comment and f">#{second.number}</a>" not in with_comment
    only_agent = page(client, f"ratings/?{RANGE}&agent={agent.pk}")
    assert "Quick and friendly" not in only_agent and f">#{second.number}</a>" in only_agent
    assert "No ratings in these days." in page(client, "ratings/?from=2026-10-01&to=2026-10-31")
