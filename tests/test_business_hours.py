"""Business hours and holidays (loket.tenancy.hours): validation, the open/closed answer in the
workspace's time zone, the settings form, and the live chat's online/away status."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from loket.connectors.registry import get_connector
from loket.inbox.services.channels import create_channel
from loket.tenancy import hours
from tests.workspace_settings.conftest import url

pytestmark = pytest.mark.django_db
WEEKDAYS = {"mon": [["09:00", "12:30"], ["13:30", "17:00"]], "sat": [["10:00", "24:00"]]}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_schedules_are_validated_with_clear_reasons():
    cases = [
        ({"mon": [["9:00", "17:00"]]}, "not a time"),
        ({"mon": [["17:00", "09:00"]]}, "not before"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlaps"),
        ({"funday": [["09:00", "17:00"]]}, "days"),
        ({"mon": []}, "at least one open day"),
    ]
    for schedule, reason in cases:
        with pytest.raises(hours.InvalidHours, match=reason):
            hours.clean_schedule(schedule)
    with pytest.raises(hours.InvalidHours, match="not a date"):
        hours.clean_holidays(["2026-13-01"])
    assert hours.clean_holidays(["2026-12-26", "2026-12-25", "2026-12-25"]) == [
        "2026-12-25",
        "2026-12-26",
    ]


def test_open_is_decided_in_the_workspaces_time_zone(workspace):
    assert hours.is_open(workspace)  # no hours set: always open
    workspace.business_hours = hours.clean_schedule(WEEKDAYS)
    workspace.time_zone = "Europe/Amsterdam"
    workspace.holidays = ["2026-12-07"]
    # Monday 30 Nov 2026: 08:30 UTC is 09:30 in Amsterdam (open); 11:45 UTC is 12:45 (lunch).
    assert hours.is_open(workspace, at("2026-11-30T08:30:00+00:00"))
    assert not hours.is_open(workspace, at("2026-11-30T11:45:00+00:00"))
    assert not hours.is_open(workspace, at("2026-11-30T07:30:00+00:00"))  # 08:30 local
    assert hours.is_open(workspace, at("2026-12-05T22:30:00+00:00"))  # Saturday 23:30 local
    assert not hours.is_open(workspace, at("2026-12-01T10:00:00+00:00"))  # Tuesday: closed
    assert not hours.is_open(workspace, at("2026-12-07T09:00:00+00:00"))  # a holiday Monday


def test_the_settings_page_sets_hours_and_holidays(owner, workspace):
    client = Client()
    client.force_login(owner.user)
    form = {
        "name": "Acme",
        "time_zone": "Europe/Amsterdam",
        "locale": "en",
        "two_factor_grace_days": "7",
        "attachment_max_mb": "25",
        "hours_mon": "09:00-12:30, 13:30-17:00",
        "hours_sat": "10:00-24:00",
        "holidays": "2026-12-25\n2026-12-26",
    }
    assert client.post(url("index", workspace), form).status_code == 302
    workspace.refresh_from_db()
    assert workspace.business_hours == WEEKDAYS
    assert workspace.holidays == ["2026-12-25", "2026-12-26"]
    page = client.get(url("index", workspace)).content.decode()
    assert 'value="09:00-12:30, 13:30-17:00"' in page
    bad = client.post(url("index", workspace), {**form, "hours_tue": "17:00-09:00"})
    assert bad.status_code == 400 and "is not before" in bad.content.decode()


def test_the_live_chat_says_away_outside_business_hours(workspace):
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})

    def online() -> bool:
        response = Client().post(
            f"/widget/{channel.uuid}/api/session", json.dumps({}), content_type="application/json"
        )
        return response.json()["status"]["online"]

    assert online() is True
    workspace.business_hours = {"mon": [["00:00", "00:01"]]}  # practically never open
    workspace.save()
    assert online() is False
