"""Reports → Scheduled e-mails: supervisors, admins and owners list, create, edit and delete
a workspace's scheduled reports and send one to themselves now; the form explains what is
wrong; another workspace's schedule is a 404 and its members cannot be recipients."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from loket.reports import rollups, schedules
from loket.reports.models import ReportSchedule
from loket.tenancy.models import Role
from loket.tenancy.services import add_member
from tests import factories
from tests.reports.test_rollups import conversation_with
from tests.workspace_settings.conftest import signed_in

pytestmark = pytest.mark.django_db

BASE = "/w/acme/reports/schedules/"


def form(**fields) -> dict:
    values = {
        "name": "Weekly team",
        "report": "overview",
        "frequency": "weekly",
        "weekday": "1",
        "hour": "8",
        "channel_id": "",
        "team_id": "",
        "priority": "",
        "business_time": "0",
        "enabled": "on",
        **fields,
    }
    return values


def test_who_may_see_the_page(workspace, owner, admin, supervisor, agent):
    assert signed_in(agent).get(BASE).status_code == 403
    for member in (owner, admin, supervisor):
        assert signed_in(member).get(BASE).status_code == 200
    other = factories.workspace("other")
    assert signed_in(factories.owner_of(other)).get(BASE).status_code == 404
    # The reports' tabs lead here.
    assert BASE in signed_in(owner).get("/w/acme/reports/").content.decode()


def test_create_edit_and_delete(workspace, owner, supervisor, agent):
    client = signed_in(supervisor)
    page = client.get(BASE).content.decode()
    # Only those who may read reports are offered as recipients.
    assert owner.user.email in page and agent.user.email not in page
    response = client.post(BASE, form(recipient_ids=[str(owner.pk), str(supervisor.pk)]))
    assert response.status_code == 302
    schedule = ReportSchedule.objects.get(workspace=workspace)
    assert (schedule.name, schedule.frequency, schedule.weekday, schedule.hour) == (
        "Weekly team",
        "weekly",
        1,
        8,
    )
    assert schedule.created_by == supervisor
    assert sorted(m.pk for m in schedule.recipients.all()) == sorted([owner.pk, supervisor.pk])
    listed = client.get(BASE).content.decode()
    assert "Weekly team" in listed and "Every Monday at 08:00" in listed

    edit = f"{BASE}{schedule.pk}/"
    assert 'value="Weekly team"' in client.get(edit).content.decode()
    channel = factories.api_channel(workspace)
    response = client.post(
        edit,
        form(
            name="Daily mail",
            frequency="daily",
            hour="7",
            channel_id=str(channel.pk),
            priority="3",
            business_time="1",
            recipient_ids=[str(owner.pk)],
        ),
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.name, schedule.frequency, schedule.weekday, schedule.hour) == (
        "Daily mail",
        "daily",
        None,
        7,
    )
    assert (schedule.channel_id, schedule.priority, schedule.business_time) == (channel.pk, 3, True)
    listed = client.get(BASE).content.decode()
    assert f"Channel: {channel.name} · Priority: High · Business hours" in listed
    assert [m.pk for m in schedule.recipients.all()] == [owner.pk]

    assert client.post(f"{edit}delete/").status_code == 302
    assert not ReportSchedule.objects.filter(pk=schedule.pk).exists()


def test_the_form_says_what_is_wrong(workspace, owner, agent):
    client = signed_in(owner)
    response = client.post(BASE, form(name="", recipient_ids=[]))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please correct the errors below." in html
    assert "Choose at least one recipient." in html
    # An agent's id smuggled in is refused by the service, with the reason.
    response = client.post(BASE, form(recipient_ids=[str(agent.pk)]))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post(BASE, form(hour="25", recipient_ids=[str(owner.pk)]))
    assert response.status_code == 400
    assert not ReportSchedule.objects.exists()


def test_another_workspace_is_out_of_reach(workspace, owner):
    other = factories.workspace("other")
    other_owner = factories.owner_of(other)
    theirs = schedules.create_schedule(
        other, actor=other_owner, name="Theirs", frequency="daily", hour=8,
        recipient_ids=[other_owner.pk],
    )  # fmt: skip
    client = signed_in(owner)
    for path in ("", "delete/", "send/"):
        method = client.get if path == "" else client.post
        assert method(f"{BASE}{theirs.pk}/{path}").status_code == 404
    assert ReportSchedule.objects.filter(pk=theirs.pk).exists()
    assert "Theirs" not in client.get(BASE).content.decode()
    # Their members cannot be recipients here, nor their channels filters.
    response = client.post(BASE, form(recipient_ids=[str(other_owner.pk)]))
    assert response.status_code == 400
    channel = factories.api_channel(other)
    response = client.post(BASE, form(channel_id=str(channel.pk), recipient_ids=[str(owner.pk)]))
    assert response.status_code == 400


def test_send_now_mails_the_period_just_ended_to_me(workspace, owner, supervisor, api_channel):
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save(update_fields=["time_zone"])
    ams = ZoneInfo("Europe/Amsterdam")
    today = dt.datetime.now(ams).date()
    yesterday = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(12), tzinfo=ams)
    conversation_with(api_channel, owner, [yesterday, yesterday + dt.timedelta(minutes=5)])
    rollups.catch_up()
    schedule = schedules.create_schedule(
        workspace, actor=owner, name="Daily", frequency="daily", hour=8,
        recipient_ids=[owner.pk],
    )  # fmt: skip
    response = signed_in(supervisor).post(f"{BASE}{schedule.pk}/send/", follow=True)
    assert "was sent to sup@acme.example" in response.content.decode()
    (message,) = mail.outbox
    assert message.to == [supervisor.user.email]  # a test: to who asked, not the recipients
    assert "New conversations: 1" in message.body
    schedule.refresh_from_db()
    assert schedule.last_sent_at is None  # nothing claimed


def test_a_member_made_agent_is_refused_as_recipient(workspace, owner):
    member = add_member(workspace, factories.user("new@acme.example"), role=Role.SUPERVISOR)
    client = signed_in(owner)
    page_form = form(recipient_ids=[str(member.pk)])
    member.role = Role.AGENT
    member.save(update_fields=["role"])
    assert client.post(BASE, page_form).status_code == 400
