"""The flow-bot funnel (loket.reports.sla_bots.bots, the page and /api/v1/reports/bots): per
flow and version, the sessions started in the range, how many reached each step in the flow's
order, how they ended and how many the bot resolved; filters, workspace scoping and who may see
it. The sessions are made by customers talking to a published flow through the real engine (as
tests/bots/test_engine.py does)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.automation import clock
from loket.bots import engine, services
from loket.bots.models import BotSession
from loket.inbox.services import outbound
from loket.reports import sla_bots
from loket.reports.queries import Filters
from loket.web.workspace import workspace_zone
from tests import factories
from tests.api.conftest import assert_error
from tests.bots.test_engine import published, says, session_of
from tests.connectors.providers import run_tasks
from tests.workspace_settings.conftest import signed_in

HELPDESK = {
    "start": "welcome",
    "language": "en",
    "steps": {
        # Stored in an order of their own: the report follows the flow (start, then each
        # step's links), not the keys.
        "thanks": {"type": "message", "text": "Thanks, we will look into it.", "next": None},
        "human": {"type": "handoff", "text": "A colleague will help you.", "title": "Person"},
        "bye": {"type": "close", "text": "Glad to help!"},
        "code": {
            "type": "input",
            "validate": "text",
            "save_as": "code",
            "text": "Your order number?",
            "next": "thanks",
        },
        "need": {
            "type": "choice",
            "text": "What do you need?",
            "save_as": "need",
            "options": [
                {"id": "hours", "title": "Opening hours", "next": "bye"},
                {"id": "person", "title": "A person", "next": "human"},
                {"id": "order", "title": "My order", "next": "code"},
            ],
        },
        "welcome": {"type": "message", "text": "Hi! I am the shop's helper.", "next": "need"},
    },
}
ORDER = ["welcome", "need", "bye", "human", "code", "thanks"]


@pytest.fixture
def shop(transactional_db, workspace):
    return factories.api_channel(workspace, name="Shop")


@pytest.fixture
def days(workspace):
    """A range around today (the sessions start now), and the same for the page and API."""
    today = dt.datetime.now(workspace_zone(workspace)).date()
    start, end = today - dt.timedelta(days=1), today + dt.timedelta(days=1)
    return start, end, f"from={start.isoformat()}&to={end.isoformat()}"


@pytest.fixture
def story(shop, workspace, agent):
    """Seven sessions on version 1, one on version 2, one on another channel, one long ago.

    v1: completed at the close step (bot-resolved); handed off by the option; handed off after
    three wrong answers (``__handoff__``); dropped at ``need``; stopped by an agent's reply;
    still talking at ``code``; the input answered (completed at the flow's end).
    v2: still talking at ``need``. Mail channel (v2): still talking. Long ago: completed.
    """
    flow = published(workspace, HELPDESK, name="Helpdesk")
    says(shop, "Hello", contact_id="c1")
    says(shop, "1", contact_id="c1")  # opening hours: close
    says(shop, "Hello", contact_id="c2")
    says(shop, "2", contact_id="c2")  # a person
    says(shop, "Hello", contact_id="c3")
    for _ in range(3):
        says(shop, "what?", contact_id="c3")  # three wrong answers: hand-off
    quiet = says(shop, "Hello", contact_id="c4")
    with clock.frozen(session_of(quiet).timeout_at + dt.timedelta(seconds=1)):
        assert engine.run_timeouts() == 1
    taken = says(shop, "Hello", contact_id="c5")
    outbound.reply(taken, author=agent, text="Anna here, I can help.")
    run_tasks()
    says(shop, "Hello", contact_id="c6")
    says(shop, "3", contact_id="c6")  # my order: waiting for the number
    says(shop, "Hello", contact_id="c7")
    says(shop, "3", contact_id="c7")
    says(shop, "12345", contact_id="c7")  # the flow's end
    services.update_flow(flow, draft={**HELPDESK, "order": ["welcome", "code", "need"]})
    services.publish(flow)
    says(shop, "Hello", contact_id="c8")
    mail = factories.api_channel(workspace, name="Mail")
    says(mail, "Hello", contact_id="c9")
    old = says(shop, "Hello", contact_id="c10")
    says(shop, "1", contact_id="c10")
    BotSession.objects.filter(conversation=old).update(
        started_at=dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    )
    return {"flow": flow, "mail": mail}


def report(workspace, days, **filters):
    start, end, _query = days
    return sla_bots.bots(workspace.pk, start, end, workspace_zone(workspace), Filters(**filters))


def funnel(row) -> list[tuple[str, int, int]]:
    return [(s["step"], s["reached"], s["dropped"]) for s in row["steps"]]


def ends(row) -> dict:
    keys = ("started", "completed", "handed_off", "dropped", "stopped", "active", "bot_resolved")
    return {key: row[key] for key in keys}


def test_sessions_paths_as_the_engine_leaves_them(story):
    paths = sorted((s.state, s.path) for s in BotSession.objects.filter(version__number=1))
    assert ("handed_off", ["welcome", "need", "__handoff__"]) in paths
    assert ("completed", ["welcome", "need", "bye"]) in paths


def test_the_funnel_per_flow_and_version(story, workspace, days):
    [flow] = report(workspace, days)
    assert (flow["flow_id"], flow["name"]) == (story["flow"].pk, "Helpdesk")
    assert ends(flow) == {
        "started": 9,
        "completed": 2,
        "handed_off": 2,
        "dropped": 1,
        "stopped": 1,
        "active": 3,
        "bot_resolved": 1,
    }
    assert flow["handed_off_share"] == 2 / 9 and flow["bot_resolved_share"] == 1 / 9
    # The newest version's order (its editor's order first), then what only v1 had.
    assert funnel(flow) == [
        ("welcome", 9, 0),
        ("code", 2, 0),
        ("need", 9, 1),
        ("bye", 1, 0),
        ("human", 1, 0),
        ("thanks", 1, 0),
        ("__handoff__", 1, 0),
    ]
    v2, v1 = flow["versions"]
    assert (v2["number"], v1["number"]) == (2, 1)
    assert ends(v2) == {
        "started": 2,
        "completed": 0,
        "handed_off": 0,
        "dropped": 0,
        "stopped": 0,
        "active": 2,
        "bot_resolved": 0,
    }
    assert ends(v1)["started"] == 7 and ends(v1)["active"] == 1
    # v1 has no editor's order: breadth-first from the start.
    assert [s["step"] for s in v1["steps"]] == [*ORDER, "__handoff__"]
    assert funnel(v1)[:3] == [("welcome", 7, 0), ("need", 7, 1), ("bye", 1, 0)]
    assert v1["steps"][3]["title"] == "Person" and v1["steps"][3]["type"] == "handoff"
    assert v1["steps"][1]["reached_share"] == 1.0


def test_filters_and_other_workspaces(story, workspace, days):
    [mail] = report(workspace, days, channel_id=story["mail"].pk)
    assert ends(mail)["started"] == 1 and [v["number"] for v in mail["versions"]] == [2]
    assert report(workspace, days, priority=4) == []
    # The agent filter does not apply to bots.
    assert ends(report(workspace, days, member_id=12345)[0])["started"] == 9
    long_ago = report(workspace, (dt.date(2026, 1, 5), dt.date(2026, 1, 5), ""))
    assert ends(long_ago[0]) == {
        "started": 1,
        "completed": 1,
        "handed_off": 0,
        "dropped": 0,
        "stopped": 0,
        "active": 0,
        "bot_resolved": 1,
    }
    other = factories.workspace("other")
    published(other, HELPDESK, name="Theirs")
    says(factories.api_channel(other), "Hello", contact_id="x1")
    assert [f["name"] for f in report(workspace, days)] == ["Helpdesk"]
    assert [ends(f)["started"] for f in report(other, days)] == [1]


# -- The page and the API ---------------------------------------------------------------------
def test_the_page(story, workspace, days, owner, supervisor, agent):
    query = days[2]
    assert signed_in(agent).get(f"/w/acme/reports/bots/?{query}").status_code == 403
    other = factories.owner_of(factories.workspace("other"))
    assert signed_in(other).get(f"/w/acme/reports/bots/?{query}").status_code == 404
    response = signed_in(supervisor).get(f"/w/acme/reports/bots/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    section = re.search(
        rf'data-flow="{story["flow"].pk}".*?<h2[^>]*>Helpdesk</h2>(.*?)</section>', html, re.S
    )[1]
    ends_row = re.search(rf'data-ends="{story["flow"].pk}"(.*?)</table>', section, re.S)[1]
    assert re.search(r'data-end="started">9<', ends_row)
    assert re.search(r'data-end="handed_off">2 <span class="muted small">\(22%\)', ends_row)
    assert re.search(r'data-end="bot_resolved">1 <span class="muted small">\(11%\)', ends_row)
    steps = re.findall(
        r'<tr data-step="([^"]+)">.*?</th>\s*<td>(\d+)</td>',
        re.search(rf'data-funnel="{story["flow"].pk}"(.*?)</table>', section, re.S)[1],
        re.S,
    )
    assert steps == [
        ("welcome", "9"),
        ("code", "2"),
        ("need", "9"),
        ("bye", "1"),
        ("human", "1"),
        ("thanks", "1"),
        ("__handoff__", "1"),
    ]
    assert "Hand-off (too many wrong answers, a failed lookup, or no FAQ answer)" in section
    assert 'data-version="1"' in section and 'data-version="2"' in section
    assert "The customer went quiet and the bot stopped waiting." in html  # definitions
    empty = signed_in(owner).get("/w/acme/reports/bots/?from=2025-01-01&to=2025-01-31")
    assert "No bot talked in these days." in empty.content.decode()


def test_the_pages_queries_do_not_grow_with_the_sessions(story, workspace, days, shop, owner):
    client = signed_in(owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/w/acme/reports/bots/?{days[2]}").status_code == 200
        return len(captured)

    before = count()
    services.update_flow(story["flow"], enabled=False)
    published(workspace, HELPDESK, name="Another flow")  # a second flow, and more sessions
    for n in range(3):
        says(shop, "Hello", contact_id=f"more-{n}")
    assert [f["started"] for f in report(workspace, days)] == [3, 9]
    assert count() == before


def test_the_api(story, workspace, days, owner, agent):
    query = days[2]
    api = factories.ApiClient(owner)
    body = api.get(f"/reports/bots?{query}").json()
    [flow] = body["flows"]
    assert (flow["flow_id"], flow["started"], flow["dropped"], flow["bot_resolved"]) == (
        story["flow"].pk,
        9,
        1,
        1,
    )
    assert [(s["step"], s["reached"]) for s in flow["steps"]][:3] == [
        ("welcome", 9),
        ("code", 2),
        ("need", 9),
    ]
    assert [(v["number"], v["started"]) for v in flow["versions"]] == [(2, 2), (1, 7)]
    assert flow["versions"][1]["steps"][1] == {
        "step": "need",
        "type": "choice",
        "title": "",
        "reached": 7,
        "reached_share": 1.0,
        "dropped": 1,
    }
    mail = api.get(f"/reports/bots?{query}&channel_id={story['mail'].pk}").json()
    assert mail["flows"][0]["started"] == 1
    assert_error(factories.ApiClient(agent).get(f"/reports/bots?{query}"), 403, "forbidden")
    other = factories.ApiClient(factories.owner_of(factories.workspace("other")))
    assert other.get(f"/reports/bots?{query}").json()["flows"] == []
