"""Auto-assignment and members' working hours: only online members inside their hours (in the
workspace's time zone, closed on its holidays) get new conversations.

The clock is the automation clock (``clock.frozen``), so every case says exactly when it is. The
workspace is in Europe/Amsterdam: UTC+1 in winter, UTC+2 in summer."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import zoneinfo

import pytest
from django.urls import reverse

from loket.automation import assignment, clock
from loket.automation.assignment import (
    configure_team,
    set_availability,
    set_working_hours,
)
from loket.inbox.models import Conversation
from loket.inbox.services.channels import update_channel
from loket.tenancy import hours
from loket.tenancy.models import AutoAssign, Availability, Membership, Role, Team, Workspace
from loket.tenancy.services import NotAllowed, add_member, create_team
from tests import factories
from tests.automation.test_assignment_concurrency import agents, arrive_concurrently, loads
from tests.workspace_settings.conftest import signed_in, url

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")
_contacts = itertools.count(1)

# Monday 7 December 2026 (winter time).
MONDAY = dt.date(2026, 12, 7)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def at(day: dt.date, time: str) -> dt.datetime:
    """A wall-clock moment in Amsterdam."""
    hour, minute = map(int, time.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=AMSTERDAM)


@pytest.fixture
def amsterdam(workspace) -> Workspace:
    Workspace.objects.filter(pk=workspace.pk).update(time_zone="Europe/Amsterdam")
    workspace.refresh_from_db()
    return workspace


@pytest.fixture
def arrive(django_capture_on_commit_callbacks):
    """A new customer's first message on the channel, with the after-commit assigner run."""

    def arrive(channel) -> Conversation:
        with django_capture_on_commit_callbacks(execute=True):
            result = factories.inbound(channel, "Hello", contact_id=f"cust-{next(_contacts)}")
        return Conversation.objects.select_related("assignee").get(pk=result.conversation_id)

    return arrive


def member(workspace, name: str, working_hours=None, *, online: bool = True) -> Membership:
    m = add_member(workspace, factories.user(f"{name.lower()}@acme.example", name))
    Membership.objects.filter(pk=m.pk).update(working_hours=working_hours)
    m.working_hours = working_hours
    if online:
        set_availability(m, Availability.ONLINE)
    return m


def support(workspace, members, channel, mode=AutoAssign.ROUND_ROBIN) -> Team:
    team = configure_team(create_team(workspace, "Support", members), auto_assign=mode)
    update_channel(channel, name=channel.name, default_team=team)
    return team


def assignee(conversation: Conversation) -> str | None:
    conversation.refresh_from_db()
    return conversation.assignee.display_name if conversation.assignee else None


@pytest.fixture
def chat(workspace):
    return factories.api_channel(workspace, name="Chat")


# -- Who is inside their hours ----------------------------------------------------------------
def test_only_members_inside_their_hours_get_conversations(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", OFFICE)
    bram = member(amsterdam, "Bram")  # no hours of his own: any time he is online
    support(amsterdam, [anna, bram], chat)
    with clock.frozen(at(MONDAY, "10:00")):
        assert [assignee(arrive(chat)) for _ in range(3)] == ["Anna", "Bram", "Anna"]
    with clock.frozen(at(MONDAY, "18:00")):
        assert [assignee(arrive(chat)) for _ in range(2)] == ["Bram", "Bram"]
    with clock.frozen(at(MONDAY + dt.timedelta(days=5), "10:00")):  # Saturday
        assert assignee(arrive(chat)) == "Bram"


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("08:59", None),
        ("09:00", "Anna"),
        ("11:59", "Anna"),
        ("12:00", None),  # a range ends before its end time
        ("12:30", None),
        ("13:00", "Anna"),
        ("17:29", "Anna"),
        ("17:30", None),
    ],
)
def test_several_ranges_a_day(amsterdam, chat, arrive, time, expected):
    anna = member(amsterdam, "Anna", {"mon": [["09:00", "12:00"], ["13:00", "17:30"]]})
    support(amsterdam, [anna], chat)
    with clock.frozen(at(MONDAY, time)):
        assert assignee(arrive(chat)) == expected


def test_the_workspace_holidays_are_days_off(amsterdam, chat, arrive):
    Workspace.objects.filter(pk=amsterdam.pk).update(holidays=["2026-12-25"])
    anna = member(amsterdam, "Anna", OFFICE)
    bram = member(amsterdam, "Bram")
    support(amsterdam, [anna, bram], chat)
    christmas = dt.date(2026, 12, 25)  # a Friday
    with clock.frozen(at(christmas, "10:00")):
        assert [assignee(arrive(chat)) for _ in range(2)] == ["Bram", "Bram"]
    with clock.frozen(at(christmas - dt.timedelta(days=7), "10:00")):
        assert [assignee(arrive(chat)) for _ in range(2)] == ["Anna", "Bram"]


def test_hours_are_the_workspace_time_zone_wall_clock_across_a_dst_change(amsterdam, chat, arrive):
    # Sunday 29 March 2026: at 02:00 the clocks go to 03:00 (UTC+1 → UTC+2). A night shift
    # 01:00-04:00 lasts two real hours that night: 00:00-02:00 UTC.
    anna = member(amsterdam, "Anna", {"sun": [["01:00", "04:00"], ["09:00", "17:00"]]})
    support(amsterdam, [anna], chat)
    change = dt.date(2026, 3, 29)

    def utc(time: str) -> dt.datetime:
        return dt.datetime.combine(change, dt.time.fromisoformat(time), tzinfo=dt.UTC)

    expected = {
        "00:30": "Anna",  # 01:30 CET
        "01:30": "Anna",  # 03:30 CEST
        "02:15": None,  # 04:15 CEST (a fixed UTC+1 would say 03:15: inside)
        "06:59": None,  # 08:59 CEST
        "07:00": "Anna",  # 09:00 CEST
        "14:59": "Anna",  # 16:59 CEST
        "15:00": None,  # 17:00 CEST
    }
    for time, who in expected.items():
        with clock.frozen(utc(time)):
            conversation = arrive(chat)
            assert assignee(conversation) == who, time
        if who:  # keep her free, so only the hours decide
            Conversation.objects.filter(pk=conversation.pk).update(assignee=None, status="resolved")
    # The Sunday before, still winter time: 09:00 local is 08:00 UTC.
    with clock.frozen(dt.datetime(2026, 3, 22, 7, 30, tzinfo=dt.UTC)):
        assert assignee(arrive(chat)) is None
    with clock.frozen(dt.datetime(2026, 3, 22, 8, 0, tzinfo=dt.UTC)):
        assert assignee(arrive(chat)) == "Anna"


def test_no_hours_of_their_own_means_always(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", None)
    support(amsterdam, [anna], chat)
    for moment in (at(MONDAY, "03:00"), at(MONDAY + dt.timedelta(days=6), "23:59")):
        with clock.frozen(moment):
            assert assignee(arrive(chat)) == "Anna"


def test_hours_never_make_an_offline_or_away_member_eligible(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", OFFICE, online=False)
    bram = member(amsterdam, "Bram", OFFICE)
    set_availability(bram, Availability.AWAY)
    support(amsterdam, [anna, bram], chat)
    with clock.frozen(at(MONDAY, "10:00")):
        assert assignee(arrive(chat)) is None


def test_balanced_mode_also_skips_members_outside_their_hours(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", {"mon": [["13:00", "17:00"]]})
    bram = member(amsterdam, "Bram", OFFICE)
    support(amsterdam, [anna, bram], chat, AutoAssign.BALANCED)
    with clock.frozen(at(MONDAY, "10:00")):
        assert [assignee(arrive(chat)) for _ in range(2)] == ["Bram", "Bram"]
    with clock.frozen(at(MONDAY, "14:00")):
        # Anna has the most room now that her hours began.
        assert [assignee(arrive(chat)) for _ in range(3)] == ["Anna", "Anna", "Bram"]


# -- The periodic job -------------------------------------------------------------------------
def test_waiting_conversations_go_to_a_member_when_their_hours_begin(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", OFFICE)
    support(amsterdam, [anna], chat)
    with clock.frozen(at(MONDAY, "08:00")):
        early = [arrive(chat), arrive(chat)]
        assert [assignee(c) for c in early] == [None, None]
        assert assignment.assign_waiting_conversations.call() == 0
    with clock.frozen(at(MONDAY, "09:00")):
        assert assignment.assign_waiting_conversations.call() == 2
    assert [assignee(c) for c in early] == ["Anna", "Anna"]


def test_a_member_keeps_their_conversations_when_their_hours_end(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", OFFICE)
    bram = member(amsterdam, "Bram")
    team = support(amsterdam, [anna, bram], chat)
    configure_team(team, reassign_when_offline=True)
    with clock.frozen(at(MONDAY, "16:30")):
        mine = arrive(chat)
    assert assignee(mine) == "Anna"
    with clock.frozen(at(MONDAY, "17:30")):
        assert assignment.assign_waiting_conversations.call() == 0
        assert assignee(arrive(chat)) == "Bram"
    assert assignee(mine) == "Anna"


def test_setting_hours_that_have_begun_assigns_waiting_conversations(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", {"mon": [["13:00", "17:00"]]})
    support(amsterdam, [anna], chat)
    with clock.frozen(at(MONDAY, "10:00")):
        waiting = arrive(chat)
        assert assignee(waiting) is None
        set_working_hours(
            anna, {"mon": [["13:00", "17:00"]], "tue": [["09:00", "17:00"]]}, actor=anna
        )
        assert assignee(waiting) is None
        set_working_hours(anna, OFFICE, actor=anna)
    assert assignee(waiting) == "Anna"


# -- Setting them -----------------------------------------------------------------------------
def test_a_member_sets_their_own_hours_and_clears_them(workspace, agent):
    set_working_hours(agent, {"tue": [["13:00", "17:00"], ["08:30", "12:00"]]}, actor=agent)
    agent.refresh_from_db()
    assert agent.working_hours == {"tue": [["08:30", "12:00"], ["13:00", "17:00"]]}
    for nothing in (None, {}):
        set_working_hours(agent, OFFICE, actor=agent)
        set_working_hours(agent, nothing, actor=agent)
        agent.refresh_from_db()
        assert agent.working_hours is None


def test_owners_and_admins_set_anyones_hours(workspace, owner, admin, agent):
    set_working_hours(agent, OFFICE, actor=admin)
    set_working_hours(admin, OFFICE, actor=owner)
    set_working_hours(owner, OFFICE, actor=admin)
    assert {m.working_hours == OFFICE for m in Membership.objects.filter(workspace=workspace)} == {
        True
    }


def test_agents_and_supervisors_cannot_set_someone_elses_hours(workspace, owner, agent):
    supervisor = add_member(
        workspace, factories.user("sue@acme.example", "Sue"), role=Role.SUPERVISOR
    )
    for actor, target in ((agent, owner), (agent, supervisor), (supervisor, agent)):
        with pytest.raises(NotAllowed):
            set_working_hours(target, OFFICE, actor=actor)
    assert not Membership.objects.filter(workspace=workspace, working_hours__isnull=False).exists()


def test_another_workspaces_member_is_refused(workspace, agent):
    other = factories.workspace("other")
    other_owner = factories.owner_of(other)
    with pytest.raises(NotAllowed):
        set_working_hours(agent, OFFICE, actor=other_owner)
    agent.refresh_from_db()
    assert agent.working_hours is None


@pytest.mark.parametrize(
    "bad",
    [
        {"mon": [["25:00", "26:00"]]},
        {"mon": [["17:00", "09:00"]]},
        {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]},
        {"monday": [["09:00", "17:00"]]},
        {"mon": []},
        "09:00-17:00",
    ],
)
def test_unusable_hours_are_refused(workspace, agent, bad):
    with pytest.raises(hours.InvalidHours):
        set_working_hours(agent, bad, actor=agent)
    agent.refresh_from_db()
    assert agent.working_hours is None


def test_unreadable_stored_hours_count_as_none(amsterdam, chat, arrive):
    anna = member(amsterdam, "Anna", {"mon": [["nine", "five"]]})
    support(amsterdam, [anna], chat)
    with clock.frozen(at(MONDAY, "03:00")):
        assert assignee(arrive(chat)) == "Anna"


def test_members_schedule_uses_the_workspace_zone_and_holidays(amsterdam, agent):
    Workspace.objects.filter(pk=amsterdam.pk).update(holidays=["2026-12-08"])
    amsterdam.refresh_from_db()
    agent.working_hours = OFFICE
    schedule = hours.Schedule.of_member(agent, amsterdam)
    assert schedule.is_open(at(MONDAY, "09:00"))
    # 07:30 UTC is 08:30 in Amsterdam.
    assert not schedule.is_open(dt.datetime.combine(MONDAY, dt.time(7, 30), tzinfo=dt.UTC))
    assert schedule.is_open(dt.datetime.combine(MONDAY, dt.time(8, 30), tzinfo=dt.UTC))
    assert not schedule.is_open(at(MONDAY + dt.timedelta(days=1), "10:00"))  # the holiday
    agent.working_hours = None
    assert hours.Schedule.of_member(agent, amsterdam).always_open


# -- Under concurrency ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [AutoAssign.BALANCED, AutoAssign.ROUND_ROBIN])
def test_concurrent_arrivals_fill_only_the_members_inside_their_hours(transactional_db, mode):
    workspace = factories.workspace("rush")
    Workspace.objects.filter(pk=workspace.pk).update(time_zone="Europe/Amsterdam")
    members = agents(workspace, [20, 20, 20, 20, 20])
    # Two of the five have Monday afternoons only; the other three work office hours.
    afternoons = {"mon": [["13:00", "17:00"]]}
    week = [OFFICE, afternoons, OFFICE, afternoons, OFFICE]
    for m, working_hours in zip(members, week, strict=True):
        Membership.objects.filter(pk=m.pk).update(working_hours=working_hours)
    team = configure_team(create_team(workspace, "Support", members), auto_assign=mode)
    channel = factories.api_channel(workspace)
    update_channel(channel, name=channel.name, default_team=team)

    with clock.frozen(at(MONDAY, "10:00")):
        results = arrive_concurrently(channel, count=100)

    assert len(results) == 100
    assert loads(members) == [20, 0, 20, 0, 20]
    assert Conversation.objects.filter(workspace=workspace, assignee__isnull=True).count() == 40
    with clock.frozen(at(MONDAY, "13:00")):
        assert assignment.assign_waiting_conversations.call() == 40
    assert loads(members) == [20, 20, 20, 20, 20]


# -- The pages --------------------------------------------------------------------------------
def test_an_admin_edits_a_members_hours_in_settings(workspace, admin, agent):
    client = signed_in(admin)
    page = client.get(url("members", workspace)).content.decode()
    row = page[page.index(f'id="member-{agent.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Whenever online" in row and url("member-hours", workspace, agent.pk) in row

    form = client.get(url("member-hours", workspace, agent.pk)).content.decode()
    assert 'name="hours_mon"' in form and 'name="hours_sun"' in form
    response = client.post(
        url("member-hours", workspace, agent.pk),
        {"hours_mon": "9:00-12:00, 13:00 - 17:30", "hours_fri": "08:00-12:00", "hours_tue": ""},
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.working_hours == {
        "mon": [["09:00", "12:00"], ["13:00", "17:30"]],
        "fri": [["08:00", "12:00"]],
    }
    form = client.get(url("member-hours", workspace, agent.pk)).content.decode()
    assert 'value="09:00-12:00, 13:00-17:30"' in form and 'value="08:00-12:00"' in form
    page = client.get(url("members", workspace)).content.decode()
    row = page[page.index(f'id="member-{agent.pk}"') :]
    assert "Mon 09:00-12:00, 13:00-17:30" in row[: row.index("</tr>")]

    # Every day empty: no hours of their own.
    client.post(url("member-hours", workspace, agent.pk), {f"hours_{d}": "" for d in OFFICE})
    agent.refresh_from_db()
    assert agent.working_hours is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("25:00-26:00", "“25:00” is not a time from 00:00 to 24:00, like 09:00."),
        ("09:00", "“09:00” is not a range like 09:00-17:30."),
        ("17:00-09:00", "17:00 is not before 09:00."),
        ("09:00-12:00, 11:00-13:00", "09:00-12:00 overlaps 11:00-13:00."),
    ],
)
def test_the_settings_page_says_what_is_wrong(workspace, admin, agent, text, error):
    set_working_hours(agent, OFFICE, actor=admin)
    response = signed_in(admin).post(
        url("member-hours", workspace, agent.pk), {"hours_mon": "09:00-17:00", "hours_wed": text}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert html.escape(error) in page
    # Said under Wednesday, and what was typed is kept.
    wednesday = page[page.index('id="id_hours_wed"') :]
    assert html.escape(error) in wednesday[: wednesday.index('id="id_hours_thu"')]
    assert f'value="{html.escape(text)}"' in page
    agent.refresh_from_db()
    assert agent.working_hours == OFFICE


def test_the_settings_page_is_for_admins_and_this_workspace_only(workspace, admin, agent):
    other = factories.workspace("other")
    stranger = factories.agent(other)
    for client, target, expected in (
        (signed_in(agent), admin, 403),
        (signed_in(admin), stranger, 404),
    ):
        response = client.post(url("member-hours", workspace, target.pk), {"hours_mon": "9-17"})
        assert response.status_code == expected
    stranger.refresh_from_db()
    admin.refresh_from_db()
    assert (stranger.working_hours, admin.working_hours) == (None, None)


def test_a_member_sets_their_own_hours_on_their_preferences_page(workspace, agent):
    client = signed_in(agent)
    me = reverse("inbox:preferences", args=[workspace.slug])
    hours_url = reverse("inbox:working_hours", args=[workspace.slug])
    page = client.get(me).content.decode()
    assert f'action="{hours_url}"' in page and 'name="hours_mon"' in page

    response = client.post(hours_url, {"hours_tue": "25:00-26:00", "hours_wed": "10:00-14:00"})
    assert response.status_code == 400
    assert html.escape("“25:00” is not a time from 00:00 to 24:00, like 09:00.") in (
        response.content.decode()
    )
    agent.refresh_from_db()
    assert agent.working_hours is None

    response = client.post(hours_url, {"hours_tue": "08:00-16:00", "hours_wed": "10:00-14:00"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.working_hours == {"tue": [["08:00", "16:00"]], "wed": [["10:00", "14:00"]]}
    assert 'value="08:00-16:00"' in client.get(me).content.decode()


def test_the_preferences_page_speaks_dutch(workspace, agent):
    agent.user.locale = "nl"
    agent.user.save(update_fields=["locale"])
    client = signed_in(agent)
    response = client.post(
        reverse("inbox:working_hours", args=[workspace.slug]), {"hours_mon": "25:00-26:00"}
    )
    page = response.content.decode()
    assert "Je werktijden" in page and "Maandag" in page
    assert html.escape("“25:00” is geen tijd van 00:00 tot 24:00, zoals 09:00.") in page
