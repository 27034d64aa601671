"""Business-time arithmetic (loket.tenancy.hours.Schedule), the base of SLA clocks: open ranges
in the workspace's (or channel's) time zone, across daylight-saving change days, holidays and
weekends, and a channel's own hours."""

from __future__ import annotations

import datetime as dt

import pytest

from loket.tenancy import hours
from loket.tenancy.hours import Schedule
from tests import factories

pytestmark = pytest.mark.django_db
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
AROUND_THE_CLOCK = {day: [["00:00", "24:00"]] for day in hours.WEEKDAYS}


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def schedule(workspace, business_hours, *, zone="Europe/Amsterdam", holidays=()):
    workspace.business_hours = business_hours
    workspace.time_zone = zone
    workspace.holidays = list(holidays)
    return Schedule.of(workspace)


def test_no_hours_means_always_open_and_calendar_time(workspace):
    week = schedule(workspace, {})
    start = utc("2026-12-05T22:00:00")  # a Saturday night
    assert week.always_open and week.is_open(start)
    assert week.add(start, 90) == utc("2026-12-05T23:30:00")
    assert week.minutes_between(start, utc("2026-12-06T02:00:00")) == 240


def test_adding_business_minutes_skips_nights_and_weekends(workspace):
    office = schedule(workspace, OFFICE)  # Amsterdam, winter: UTC+1
    friday_afternoon = utc("2026-12-04T15:00:00")  # 16:00 local
    # One hour left on Friday, the second hour on Monday from 09:00 local (08:00 UTC).
    assert office.add(friday_afternoon, 120) == utc("2026-12-07T09:00:00")
    assert office.minutes_between(friday_afternoon, utc("2026-12-07T09:00:00")) == 120
    saturday = utc("2026-12-05T12:00:00")
    assert not office.is_open(saturday)
    assert office.next_open(saturday) == utc("2026-12-07T08:00:00")
    assert office.add(saturday, 0) == utc("2026-12-07T08:00:00")


def test_holidays_are_closed_all_day(workspace):
    office = schedule(workspace, OFFICE, holidays=["2026-12-25"])  # a Friday
    thursday_evening = utc("2026-12-24T15:30:00")  # 16:30 local
    assert not office.is_open(utc("2026-12-25T10:00:00"))
    assert office.add(thursday_evening, 60) == utc("2026-12-28T08:30:00")


def test_the_spring_forward_day_has_23_open_hours(workspace):
    always = schedule(workspace, AROUND_THE_CLOCK)
    # Europe/Amsterdam moves from 02:00 to 03:00 on Sunday 29 March 2026.
    start = dt.datetime(2026, 3, 29, 0, 0, tzinfo=hours._zone("Europe/Amsterdam"))
    end = dt.datetime(2026, 3, 30, 0, 0, tzinfo=hours._zone("Europe/Amsterdam"))
    assert always.minutes_between(start, end) == 23 * 60
    office = schedule(workspace, {"sun": [["01:00", "04:00"]]})
    assert office.minutes_between(start, end) == 2 * 60  # 01:00-04:00 local is two real hours


def test_the_fall_back_day_has_25_open_hours(workspace):
    always = schedule(workspace, AROUND_THE_CLOCK)
    zone = hours._zone("Europe/Amsterdam")
    start = dt.datetime(2026, 10, 25, 0, 0, tzinfo=zone)
    end = dt.datetime(2026, 10, 26, 0, 0, tzinfo=zone)
    assert always.minutes_between(start, end) == 25 * 60
    # Eight business hours from Friday 16:00 local (UTC+2): one on Friday, seven on Monday
    # from 09:00, so Monday 16:00 local, which is UTC+1 after the change.
    office = schedule(workspace, OFFICE)
    friday = dt.datetime(2026, 10, 23, 16, 0, tzinfo=zone)
    assert office.add(friday, 8 * 60) == utc("2026-10-26T15:00:00")


def test_the_time_zone_decides_the_open_ranges(workspace):
    new_york = schedule(workspace, OFFICE, zone="America/New_York")
    # 09:00 in New York on Monday 7 December 2026 is 14:00 UTC.
    assert not new_york.is_open(utc("2026-12-07T13:59:00"))
    assert new_york.is_open(utc("2026-12-07T14:00:00"))
    assert new_york.next_open(utc("2026-12-07T10:00:00")) == utc("2026-12-07T14:00:00")


def test_several_ranges_a_day(workspace):
    split = schedule(workspace, {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}, zone="UTC")
    monday_morning = utc("2026-12-07T11:30:00")
    assert split.add(monday_morning, 60) == utc("2026-12-07T13:30:00")  # over lunch
    assert split.minutes_between(monday_morning, utc("2026-12-07T17:00:00")) == 30 + 240


def test_a_schedule_that_never_opens_gives_no_due_time(workspace):
    week = schedule(workspace, {"mon": [["09:00", "10:00"]]}, zone="UTC")
    # Every Monday for the next years a holiday: no open time within the horizon.
    mondays = [(dt.date(2026, 12, 7) + dt.timedelta(weeks=n)).isoformat() for n in range(0, 120)]
    closed = schedule(workspace, {"mon": [["09:00", "10:00"]]}, zone="UTC", holidays=mondays)
    assert week.add(utc("2026-12-07T00:00:00"), 30) == utc("2026-12-07T09:30:00")
    assert closed.add(utc("2026-12-07T00:00:00"), 30) is None
    assert closed.next_open(utc("2026-12-07T00:00:00")) is None


def test_a_channel_can_have_hours_of_its_own(workspace, owner):
    from loket.inbox.services.channels import set_channel_hours

    workspace.business_hours = OFFICE
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save()
    phone = factories.api_channel(workspace, name="Phone line")
    saturday = utc("2026-12-05T10:00:00")
    assert not hours.is_open(workspace, saturday, channel=phone)
    set_channel_hours(phone, {"hours": {"sat": [["10:00", "14:00"]]}})
    assert hours.is_open(workspace, saturday, channel=phone)
    assert not hours.is_open(workspace, saturday)  # the workspace itself is closed
    with pytest.raises(hours.InvalidHours, match="time zone"):
        set_channel_hours(phone, {"time_zone": "Mars/Olympus"})
    set_channel_hours(phone, None)
    assert phone.business_hours is None


def test_channel_hours_over_the_api(workspace, owner, api):
    channel = factories.api_channel(workspace)
    answer = api.patch(
        f"/channels/{channel.pk}",
        {
            "business_hours": {
                "hours": {"mon": [["08:00", "12:00"]]},
                "time_zone": "Europe/Brussels",
            }
        },
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["business_hours"] == {
        "hours": {"mon": [["08:00", "12:00"]]},
        "time_zone": "Europe/Brussels",
    }
    refused = api.patch(
        f"/channels/{channel.pk}", {"business_hours": {"hours": {"mon": [["9", "5"]]}}}
    )
    assert refused.status_code == 400
    assert "not a time" in refused.content.decode()
