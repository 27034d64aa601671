"""Online time of the agents report: each change of availability closes one period and opens
the next (in set_availability's transaction); the report clips the online periods to the
workspace's days, counts an open one up to now, and never counts away or offline."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from loket.automation import clock
from loket.automation.assignment import set_availability
from loket.reports.presence import online_seconds
from loket.tenancy.models import AvailabilityPeriod
from tests import factories

AMS = ZoneInfo("Europe/Amsterdam")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=AMS)


def change(member, availability, moment):
    with clock.frozen(moment):
        set_availability(member, availability)


def test_periods_open_and_close_with_each_change(agent):
    change(agent, "online", at(2, 9))
    change(agent, "online", at(2, 10))  # no change: no new period
    change(agent, "away", at(2, 12))
    periods = list(
        AvailabilityPeriod.objects.filter(membership=agent).order_by("started_at")
        .values_list("availability", "started_at", "ended_at")
    )  # fmt: skip
    assert periods == [("online", at(2, 9), at(2, 12)), ("away", at(2, 12), None)]


def test_online_time_is_clipped_to_the_days_and_counts_an_open_period_to_now(workspace, agent):
    other = factories.agent(workspace, "other@acme.example")
    # Across midnight: 22:00 on the 1st to 02:00 on the 2nd; then 09:00-12:30 online, away till
    # 13:00, online again (open).
    change(agent, "online", at(1, 22))
    change(agent, "offline", at(2, 2))
    change(agent, "online", at(2, 9))
    change(agent, "away", at(2, 12, 30))
    change(agent, "online", at(2, 13))
    change(other, "away", at(2, 9))

    with clock.frozen(at(2, 15)):
        day2 = online_seconds(workspace.pk, dt.date(2026, 3, 2), dt.date(2026, 3, 2), AMS)
        both = online_seconds(workspace.pk, dt.date(2026, 3, 1), dt.date(2026, 3, 2), AMS)
        day1 = online_seconds(workspace.pk, dt.date(2026, 3, 1), dt.date(2026, 3, 1), AMS)
    assert day2 == {agent.pk: (2 + 3.5 + 2) * 3600}
    assert both == {agent.pk: (4 + 3.5 + 2) * 3600}
    assert day1 == {agent.pk: 2 * 3600}  # only the part before midnight
    with clock.frozen(at(4, 0)):  # the open period runs to the end of the day, not past it
        assert online_seconds(workspace.pk, dt.date(2026, 3, 2), dt.date(2026, 3, 2), AMS) == {
            agent.pk: (2 + 3.5 + 11) * 3600
        }


def test_another_workspaces_members_never_count(workspace, agent):
    elsewhere = factories.workspace("elsewhere")
    stranger = factories.owner_of(elsewhere)
    change(stranger, "online", at(2, 9))
    with clock.frozen(at(2, 10)):
        assert online_seconds(workspace.pk, dt.date(2026, 3, 2), dt.date(2026, 3, 2), AMS) == {}
        assert online_seconds(elsewhere.pk, dt.date(2026, 3, 2), dt.date(2026, 3, 2), AMS) == {
            stranger.pk: 3600.0
        }


def test_the_agents_page_and_the_api_show_online_time(workspace, owner, agent, supervisor):
    from tests.workspace_settings.conftest import signed_in

    workspace.time_zone = "Europe/Amsterdam"
    workspace.save(update_fields=["time_zone"])
    change(agent, "online", at(2, 9))
    change(agent, "offline", at(2, 11, 30))  # online without a single reply: listed all the same
    query = "from=2026-03-02&to=2026-03-02"

    page = signed_in(supervisor).get(f"/w/acme/reports/agents/?{query}").content.decode()
    table = page[page.index('id="agents-table"') :]
    row = table[table.index("Abe Agent") :]
    assert "Online time" in page and "2 h 30 min" in row[: row.index("</tr>")]
    items = factories.ApiClient(owner).get(f"/reports/agents?{query}").json()["items"]
    assert {i["member_id"]: i["online_seconds"] for i in items} == {agent.pk: 9000.0}
    # Online time is no channel's: with a channel filter only members with figures are listed.
    channel = factories.api_channel(workspace)
    items = factories.ApiClient(owner).get(f"/reports/agents?{query}&channel_id={channel.pk}")
    assert items.json()["items"] == []


def test_the_agents_download_has_the_online_time(workspace, agent):
    from loket.reports import exports

    workspace.time_zone = "Europe/Amsterdam"
    workspace.save(update_fields=["time_zone"])
    change(agent, "online", at(2, 9))
    change(agent, "away", at(2, 10))
    table = exports.agents_table(workspace.pk, dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    rows = list(table)
    column = table.headers.index("Online time (s)")
    assert [(row[0], row[column]) for row in rows] == [("Abe Agent", 3600)]
