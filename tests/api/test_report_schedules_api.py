"""Scheduled reports over the API (/api/v1/reports/schedules): create, list, show, change and
delete for supervisors', admins' and owners' tokens; errors name the field; recipients and
filters only of the token's workspace (another workspace's schedule is a 404, tested with every
route in test_cross_workspace.py)."""

from __future__ import annotations

import pytest

from loket.reports.models import ReportSchedule
from tests import factories
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

PATH = "/reports/schedules"


def test_create_show_change_and_delete(workspace, owner, supervisor, api_channel):
    api = factories.ApiClient(supervisor)
    response = api.post(
        PATH,
        {
            "name": "Monday numbers",
            "frequency": "weekly",
            "weekday": 1,
            "hour": 9,
            "report": "agents",
            "channel_id": api_channel.pk,
            "business_time": True,
            "recipient_ids": [owner.pk, supervisor.pk],
        },
    )
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["frequency"] == "weekly" and made["weekday"] == 1 and made["hour"] == 9
    assert made["report"] == "agents" and made["channel_id"] == api_channel.pk
    assert made["recipient_ids"] == sorted([owner.pk, supervisor.pk])
    assert made["created_by_id"] == supervisor.pk and made["enabled"] is True
    assert made["last_period_sent"] is not None  # the first e-mail goes at the next time

    assert api.get(PATH).json() == [made]
    assert api.get(f"{PATH}/{made['id']}").json() == made

    changed = api.patch(
        f"{PATH}/{made['id']}", {"frequency": "daily", "channel_id": None, "enabled": False}
    ).json()
    assert changed["frequency"] == "daily" and changed["weekday"] is None
    assert changed["channel_id"] is None and changed["enabled"] is False
    assert changed["hour"] == 9 and changed["recipient_ids"] == made["recipient_ids"]

    assert api.delete(f"{PATH}/{made['id']}").status_code == 204
    assert not ReportSchedule.objects.exists()
    assert_error(api.get(f"{PATH}/{made['id']}"), 404, "not_found")


def test_errors_name_the_field(workspace, owner, agent):
    api = factories.ApiClient(owner)
    base = {"name": "Daily", "frequency": "daily", "recipient_ids": [owner.pk]}
    for change, text in (
        ({"recipient_ids": [agent.pk]}, "recipient_ids: Abe Agent cannot read reports"),
        ({"recipient_ids": []}, "recipient_ids: Choose at least one recipient."),
        ({"frequency": "weekly"}, "weekday: "),
        ({"hour": -1}, "hour: "),
        ({"team_id": 123456}, "team_id: This workspace has no such team."),
    ):
        error = assert_error(api.post(PATH, {**base, **change}), 400, "invalid")
        assert error["message"].startswith(text), (change, error)
    made = api.post(PATH, base).json()
    error = assert_error(api.patch(f"{PATH}/{made['id']}", {"name": None}), 400, "invalid")
    assert "name cannot be null" in error["message"]
    assert not ReportSchedule.objects.exclude(pk=made["id"]).exists()


def test_agents_are_refused(workspace, owner, agent):
    made = (
        factories.ApiClient(owner)
        .post(PATH, {"name": "Daily", "frequency": "daily", "recipient_ids": [owner.pk]})
        .json()
    )
    api = factories.ApiClient(agent)
    assert_error(api.get(PATH), 403, "forbidden")
    assert_error(api.get(f"{PATH}/{made['id']}"), 403, "forbidden")
    assert_error(api.delete(f"{PATH}/{made['id']}"), 403, "forbidden")
    assert ReportSchedule.objects.filter(pk=made["id"]).exists()
