"""The SLA report (loket.reports.sla_bots.sla, the page and /api/v1/reports/sla): targets
achieved (an ``SlaOutcome`` written where the target stops) and breached (``SlaBreach``) per
policy and target, on the day each happened, with filters, the breaches list linking to the
conversations, workspace scoping and who may see it. The SLA clock is driven through the real
services on a frozen clock (as tests/automation/test_sla.py does)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.automation import sla
from loket.automation.models import SlaBreach, SlaOutcome
from loket.inbox.services.conversations import update_conversation
from loket.reports import sla_bots
from loket.reports.queries import Filters
from loket.tenancy.services import create_team
from tests import factories
from tests.api.conftest import assert_error
from tests.automation.test_sla import (
    AMS,
    MONDAY,
    agent_replies,
    at,
    check,
    customer_writes,
    fresh,
    monday,
    set_status,
)
from tests.workspace_settings.conftest import signed_in

TUESDAY = MONDAY + dt.timedelta(days=1)
ONLY_MONDAY = "from=2026-12-07&to=2026-12-07"
BOTH_DAYS = "from=2026-12-07&to=2026-12-08"


def policy(workspace, name, targets, **kw):
    return sla.create_policy(workspace, name=name, business_hours=False, targets=targets, **kw)


@pytest.fixture
def office(transactional_db, workspace):
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save()
    return workspace


@pytest.fixture
def anna(office):
    return factories.agent(office, "anna@shop.example")


@pytest.fixture
def story(office, anna):
    """Standard (default, calendar time): first response 60 min, next 30, resolution 8 h.
    VIP (the VIP channel): first response 5 min.

    - A: answered in 20 min (met), a later question answered in 20 min (met), resolved at
      noon (met): three targets achieved on Monday.
    - B: answered after 90 min (first response breached Monday 11:30); left open, its
      resolution is breached when the check runs on Tuesday at 10:00.
    - C (VIP): breached by the check at 10:06, answered at 10:10 (ended late: not achieved).
    """
    standard = policy(
        office,
        "Standard",
        {"0": {"first_response": 60, "next_response": 30, "resolution": 480}},
        is_default=True,
    )
    vip_channel = factories.api_channel(office, name="VIP")
    shop = factories.api_channel(office, name="Shop")
    vip = policy(office, "VIP", {"0": {"first_response": 5}}, channels=[vip_channel])

    a = customer_writes(shop, monday("10:00"), contact_id="cust-a")
    a = agent_replies(a, anna, monday("10:20"))
    a = customer_writes(shop, monday("11:00"), "And the invoice?", contact_id="cust-a")
    a = agent_replies(a, anna, monday("11:20"))
    a = set_status(a, "resolved", monday("12:00"))

    b = customer_writes(shop, monday("10:00"), contact_id="cust-b")
    b = agent_replies(b, anna, monday("11:30"))

    c = customer_writes(vip_channel, monday("10:00"), contact_id="cust-c")
    assert check(monday("10:06")) == 1
    c = agent_replies(c, anna, monday("10:10"))
    check(at(TUESDAY, "10:00"))
    return {
        "standard": standard,
        "vip": vip,
        "shop": shop,
        "vip_channel": vip_channel,
        "a": a,
        "b": fresh(b),
        "c": c,
    }


def figures(workspace, start=MONDAY, end=MONDAY, **filters):
    return sla_bots.sla(workspace.pk, start, end, AMS, Filters(**filters))


def by_name(result) -> dict:
    return {row["name"]: row for row in result["policies"]}


def counts(row) -> dict:
    return {t: (f["met"], f["breached"]) for t, f in row["targets"].items()}


def test_outcomes_are_recorded_where_the_targets_stop(story):
    a, b, c = story["a"], story["b"], story["c"]
    recorded = {
        (o.conversation_id, o.target, o.met, o.completed_at, o.due_at)
        for o in SlaOutcome.objects.all()
    }
    assert recorded == {
        (a.pk, "first_response", True, monday("10:20"), monday("11:00")),
        (a.pk, "next_response", True, monday("11:20"), monday("11:30")),
        (a.pk, "resolution", True, monday("12:00"), monday("18:00")),
        (b.pk, "first_response", False, monday("11:30"), monday("11:00")),
        (c.pk, "first_response", False, monday("10:10"), monday("10:05")),
    }
    # B's resolution is breached but still running: a breach, no outcome yet.
    assert SlaBreach.objects.filter(conversation=b, target="resolution").count() == 1


def test_achieved_and_breached_per_policy_and_target(story):
    monday_only = figures(story["a"].workspace)
    policies = by_name(monday_only)
    assert list(policies) == ["Standard", "VIP"]
    assert counts(policies["Standard"]) == {
        "first_response": (1, 1),
        "next_response": (1, 0),
        "resolution": (1, 0),
    }
    assert counts(policies["VIP"]) == {
        "first_response": (0, 1),
        "next_response": (0, 0),
        "resolution": (0, 0),
    }
    assert policies["Standard"]["targets"]["first_response"]["achieved_share"] == 0.5
    assert policies["VIP"]["targets"]["resolution"]["achieved_share"] is None
    assert monday_only["totals"]["first_response"] == {
        "met": 1,
        "breached": 2,
        "achieved_share": 1 / 3,
    }
    assert monday_only["all"] == {"met": 3, "breached": 2, "achieved_share": 0.6}
    # B's resolution was breached on Tuesday.
    both = by_name(figures(story["a"].workspace, end=TUESDAY))
    assert counts(both["Standard"])["resolution"] == (1, 1)
    tuesday = by_name(figures(story["a"].workspace, start=TUESDAY, end=TUESDAY))
    assert counts(tuesday["Standard"]) == {
        "first_response": (0, 0),
        "next_response": (0, 0),
        "resolution": (0, 1),
    }


def test_filters_and_a_deleted_policy(story, office):
    workspace = story["a"].workspace
    vip = by_name(figures(workspace, channel_id=story["vip_channel"].pk))
    assert counts(vip["Standard"])["first_response"] == (0, 0)
    assert counts(vip["VIP"])["first_response"] == (0, 1)
    team = create_team(office, name="Billing")
    update_conversation(fresh(story["a"]), actor=None, team=team)
    billing = by_name(figures(workspace, team_id=team.pk))
    assert counts(billing["Standard"]) == {
        "first_response": (1, 0),
        "next_response": (1, 0),
        "resolution": (1, 0),
    }
    assert counts(by_name(figures(workspace, priority=4))["Standard"])["first_response"] == (0, 0)
    # A deleted policy's breaches and outcomes stay, without it.
    sla.delete_policy(story["vip"])
    rows = figures(workspace)["policies"]
    assert [(row["policy_id"], row["name"]) for row in rows] == [
        (story["standard"].pk, "Standard"),
        (None, None),
    ]
    assert counts(rows[1])["first_response"] == (0, 1)


def test_other_workspaces_count_nowhere(story):
    other = factories.workspace("other")
    other.time_zone = "Europe/Amsterdam"
    other.save()
    policy(other, "Theirs", {"0": {"first_response": 1}}, is_default=True)
    theirs = customer_writes(factories.api_channel(other), monday("10:00"), contact_id="x")
    check(monday("10:30"))
    assert SlaBreach.objects.filter(workspace=other).count() == 1
    assert figures(story["a"].workspace)["totals"]["first_response"]["breached"] == 2
    assert [row["name"] for row in figures(other)["policies"]] == ["Theirs"]
    assert theirs.workspace_id == other.pk


# -- The page ---------------------------------------------------------------------------------
def page(member, query: str):
    return signed_in(member).get(f"/w/acme/reports/sla/?{query}")


def test_the_page_shows_the_figures_definitions_and_breaches(story, office):
    supervisor = factories.agent(office, "sup@shop.example")
    supervisor.role = "supervisor"
    supervisor.save()
    response = page(supervisor, ONLY_MONDAY)
    assert response.status_code == 200
    html = response.content.decode()
    standard = re.search(r'<tbody data-policy="Standard">(.*?)</tbody>', html, re.S)[1]
    first = re.search(r'<tr data-target="first_response">(.*?)</tr>', standard, re.S)[1]
    cells = re.findall(r"<td>(.*?)</td>", first, re.S)
    assert cells[0] == "1" and ">1</a>" in cells[1] and cells[2] == "50%"
    assert "Achieved out of achieved and breached." in html  # the definition
    tile = re.search(r'data-target="first_response".*?class="value">([^<]+)<', html, re.S)
    assert tile[1] == "33%"
    # The breaches, newest first, each linking to its conversation.
    breaches = re.search(r'<table class="list" id="sla-breaches">(.*?)</table>', html, re.S)[1]
    numbers = re.findall(r'href="/w/acme/inbox/[^"]*?(\d+)/?"', breaches)
    assert numbers == [str(story["b"].number), str(story["c"].number)]
    assert "2 breaches in these days." in html
    # One policy's and target's breaches.
    vip = page(supervisor, f"{BOTH_DAYS}&policy={story['vip'].pk}&target=first_response")
    listed = re.search(r'id="sla-breaches">(.*?)</table>', vip.content.decode(), re.S)[1]
    assert f"#{story['c'].number}<" in listed and f"#{story['b'].number}<" not in listed
    both = page(supervisor, BOTH_DAYS).content.decode()
    assert "3 breaches in these days." in both


def test_the_pages_queries_do_not_grow_with_the_data(story, office, anna):
    owner = factories.owner_of(office)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert page(owner, BOTH_DAYS).status_code == 200
        return len(captured)

    before = count()
    policy(office, "Gold", {"0": {"first_response": 1}}, channels=[story["vip_channel"]])
    for n in range(3):
        conversation = customer_writes(story["shop"], monday("13:00"), contact_id=f"more-{n}")
        agent_replies(conversation, anna, monday("15:00"))
    assert figures(office, end=TUESDAY)["totals"]["first_response"]["breached"] == 5
    assert count() == before


def test_who_may_see_it(story, office, anna):
    assert page(anna, ONLY_MONDAY).status_code == 403
    owner = factories.owner_of(office)
    assert page(owner, ONLY_MONDAY).status_code == 200
    other = factories.workspace("other")
    assert page(factories.owner_of(other), ONLY_MONDAY).status_code == 404
    # Another workspace's policy in the filter is ignored: every breach is listed.
    their_policy = policy(other, "Theirs", {"0": {"first_response": 1}})
    html = page(owner, f"{ONLY_MONDAY}&policy={their_policy.pk}").content.decode()
    assert "2 breaches in these days." in html


# -- The API ----------------------------------------------------------------------------------
def test_the_api(story, office, anna):
    owner = factories.owner_of(office)
    api = factories.ApiClient(owner)
    body = api.get(f"/reports/sla?{ONLY_MONDAY}").json()
    assert (body["from"], body["to"]) == ("2026-12-07", "2026-12-07")
    assert body["totals"]["first_response"] == {"met": 1, "breached": 2, "achieved_share": 1 / 3}
    assert body["all"] == {"met": 3, "breached": 2, "achieved_share": 0.6}
    standard = next(p for p in body["policies"] if p["name"] == "Standard")
    assert standard["policy_id"] == story["standard"].pk
    assert standard["targets"]["resolution"] == {"met": 1, "breached": 0, "achieved_share": 1.0}
    assert body["breaches_count"] == 2
    assert [(b["conversation_number"], b["target"]) for b in body["breaches"]] == [
        (story["b"].number, "first_response"),
        (story["c"].number, "first_response"),
    ]
    assert body["breaches"][0]["completed_at"].startswith("2026-12-07T10:30")  # 11:30 CET
    later = api.get(f"/reports/sla?{BOTH_DAYS}&target=resolution").json()
    assert [b["conversation_id"] for b in later["breaches"]] == [story["b"].pk]
    assert later["breaches"][0]["completed_at"] is None  # still running
    paged = api.get(f"/reports/sla?{BOTH_DAYS}&limit=1&offset=1").json()
    assert paged["breaches_count"] == 3 and len(paged["breaches"]) == 1
    channel = api.get(f"/reports/sla?{ONLY_MONDAY}&channel_id={story['vip_channel'].pk}").json()
    assert channel["totals"]["first_response"]["breached"] == 1
    assert_error(api.get(f"/reports/sla?{ONLY_MONDAY}&target=soon"), 400, "invalid")
    assert_error(factories.ApiClient(anna).get(f"/reports/sla?{ONLY_MONDAY}"), 403, "forbidden")
    # Another workspace's token sees its own (nothing), never these.
    other = factories.ApiClient(factories.owner_of(factories.workspace("other")))
    theirs = other.get(f"/reports/sla?{ONLY_MONDAY}").json()
    assert theirs["policies"] == [] and theirs["breaches_count"] == 0
