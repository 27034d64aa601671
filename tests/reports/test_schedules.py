"""Scheduled reports (loket.reports.schedules): when a schedule is due in its workspace's time
zone (across daylight saving), one send job per period however often the periodic job runs,
one e-mail per recipient per period however many jobs or workers try, the figures of the
period against the one before in the recipient's language with a link to the same report,
and nothing for a recipient who left or lost the right to read reports."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from loket.jobs import policy
from loket.jobs.worker import Worker, run_due_periodic_jobs
from loket.reports import rollups, schedules
from loket.reports.models import ReportSchedule
from loket.reports.tasks import send_due_report_schedules, send_report_schedule
from loket.tenancy.models import Membership, Role, User, Workspace
from loket.tenancy.services import NotAllowed, add_member
from tests import factories
from tests.reports.test_rollups import conversation_with

pytestmark = pytest.mark.django_db

AMS = ZoneInfo("Europe/Amsterdam")
UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=AMS)


def in_zone(workspace: Workspace, name: str) -> Workspace:
    Workspace.objects.filter(pk=workspace.pk).update(time_zone=name)
    workspace.refresh_from_db()
    return workspace


def make(workspace, actor, **fields) -> ReportSchedule:
    values = {
        "name": "Daily support",
        "frequency": "daily",
        "hour": 8,
        "recipient_ids": [actor.pk],
        **fields,
    }
    schedule = schedules.create_schedule(workspace, actor=actor, **values)
    return ReportSchedule.objects.select_related("workspace").get(pk=schedule.pk)


def never_sent(schedule: ReportSchedule) -> ReportSchedule:
    ReportSchedule.objects.filter(pk=schedule.pk).update(
        last_period_enqueued=None, last_period_sent=None
    )
    schedule.refresh_from_db()
    return schedule


def jobs() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=send_report_schedule.module_path))


def run_jobs() -> None:
    """Run every enqueued send job (as the worker would) and forget them."""
    for row in jobs():
        send_report_schedule.call(*row.args_kwargs["args"])
        row.delete()


# -- when ---------------------------------------------------------------------------------------


def test_daily_and_weekly_periods_in_the_workspace_zone(workspace, owner):
    in_zone(workspace, "Europe/Amsterdam")
    daily = make(workspace, owner, hour=8)
    # 07:59 in Amsterdam (06:59 UTC) on Tuesday the 10th: today's send time has not come, the
    # latest period is the 8th (sent on the 9th); at 08:00 it is the 9th.
    assert schedules.latest_period(daily, at(10, 7, 59)) == dt.date(2026, 11, 8)
    assert schedules.latest_period(daily, at(10, 8, 0)) == dt.date(2026, 11, 9)
    assert schedules.latest_period(daily, at(10, 23, 59)) == dt.date(2026, 11, 9)

    weekly = make(workspace, owner, frequency="weekly", weekday=1, hour=8)
    # Monday the 16th, 07:59: the week of the 9th is not due yet; the week of the 2nd is.
    assert schedules.latest_period(weekly, at(16, 7, 59)) == dt.date(2026, 11, 2)
    assert schedules.latest_period(weekly, at(16, 8, 0)) == dt.date(2026, 11, 9)
    assert schedules.latest_period(weekly, at(15, 23, 0)) == dt.date(2026, 11, 2)  # Sunday
    friday = make(workspace, owner, frequency="weekly", weekday=5, hour=17)
    # Friday the 20th sends the week of the 9th at 17:00; before that, the last one sent (on
    # the 13th) was the week of the 2nd.
    assert schedules.latest_period(friday, at(20, 16, 0)) == dt.date(2026, 11, 2)
    assert schedules.latest_period(friday, at(20, 17, 0)) == dt.date(2026, 11, 9)
    assert schedules.period_of("weekly", dt.date(2026, 11, 9)) == (
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 15),
    )


def test_the_same_moment_is_another_day_in_another_zone(db):
    auckland = in_zone(factories.workspace("kiwi"), "Pacific/Auckland")
    new_york = in_zone(factories.workspace("nyc"), "America/New_York")
    kiwi = never_sent(make(auckland, factories.owner_of(auckland), hour=8))
    nyc = never_sent(make(new_york, factories.owner_of(new_york), hour=8))
    now = dt.datetime(2026, 11, 10, 20, 0, tzinfo=UTC)  # 09:00 on the 11th in Auckland
    assert schedules.latest_period(kiwi, now) == dt.date(2026, 11, 10)
    assert schedules.latest_period(nyc, now) == dt.date(2026, 11, 9)  # 15:00 on the 10th
    found = {schedule.pk: period for schedule, period in schedules.due(now)}
    assert found == {kiwi.pk: dt.date(2026, 11, 10), nyc.pk: dt.date(2026, 11, 9)}


def test_daylight_saving_skipped_and_repeated_hours(workspace, owner):
    in_zone(workspace, "Europe/Amsterdam")
    schedule = never_sent(make(workspace, owner, hour=2))
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST. The skipped hour is due at 03:00.
    before = dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # 01:59 CET
    after = dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert schedules.latest_period(schedule, before) == dt.date(2026, 3, 27)
    assert schedules.latest_period(schedule, after) == dt.date(2026, 3, 28)

    # 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:00 happens twice. Due at the
    # first, and only one job for the day however often the periodic job runs after it.
    first = dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    second = dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET
    assert schedules.latest_period(schedule, first - dt.timedelta(minutes=1)) == dt.date(
        2026, 10, 23
    )
    assert schedules.enqueue_due(first) == 1
    assert schedules.enqueue_due(second) == 0
    assert schedules.enqueue_due(second + dt.timedelta(hours=3)) == 0
    assert [row.args_kwargs["args"] for row in jobs()] == [[schedule.pk, "2026-10-24"]]


def test_a_new_schedule_starts_at_its_next_time_and_disabled_ones_wait(workspace, owner):
    schedule = make(workspace, owner, hour=0)
    assert schedules.due() == []  # the period whose hour passed before it existed is not sent
    never_sent(schedule)
    assert [s.pk for s, _period in schedules.due()] == [schedule.pk]
    schedules.update_schedule(schedule, actor=owner, enabled=False)
    assert schedules.due() == [] and schedules.enqueue_due() == 0


# -- at most once -------------------------------------------------------------------------------


@pytest.fixture
def figures(workspace, owner, agent, api_channel):
    """Tuesday the 10th: two conversations, first responses after 30 and 10 minutes, one
    resolved; Monday the 9th: one conversation answered after 60 minutes."""
    in_zone(workspace, "Europe/Amsterdam")
    conversation_with(api_channel, owner, [at(10, 9), at(10, 9, 30)], resolve_at=at(10, 11))
    conversation_with(api_channel, agent, [at(10, 14), at(10, 14, 10)], contact="c-2")
    conversation_with(api_channel, owner, [at(9, 9), at(9, 10)], contact="c-3")
    rollups.catch_up()


def test_the_periodic_job_twice_sends_one_mail(workspace, owner, supervisor, figures):
    schedule = never_sent(make(workspace, owner, recipient_ids=[owner.pk, supervisor.pk]))
    now = at(11, 8, 30)
    assert schedules.enqueue_due(now) == 1
    assert schedules.enqueue_due(now) == 0
    assert len(jobs()) == 1
    # The same period's job twice (a duplicate, a retry after a crash): one e-mail each.
    row = jobs()[0]
    send_report_schedule.call(*row.args_kwargs["args"])
    send_report_schedule.call(*row.args_kwargs["args"])
    assert sorted(m.to[0] for m in mail.outbox) == [owner.user.email, supervisor.user.email]
    schedule.refresh_from_db()
    assert schedule.last_period_sent == dt.date(2026, 11, 10)
    assert schedule.last_sent_at is not None and schedule.last_error == ""
    # Later that day the periodic job finds nothing more to do. (It runs every minute.)
    assert schedules.enqueue_due(at(11, 23, 59)) == 0
    assert len(jobs()) == 1
    registered = {p.name: p.every_seconds for p in policy.periodic_jobs()}
    assert registered[send_due_report_schedules.module_path] == 60


def test_through_the_worker(workspace, owner):
    """The periodic job as the worker runs it: it enqueues the send job, which mails."""
    schedule = never_sent(make(workspace, owner))
    assert send_due_report_schedules.module_path in run_due_periodic_jobs()
    worker = Worker(worker_id="w-test")
    while (row := worker.claim()) is not None:
        worker.execute(row)
    assert [m.to for m in mail.outbox] == [[owner.user.email]]
    schedule.refresh_from_db()
    assert schedule.last_period_sent == schedules.latest_period(schedule, timezone.now())
    assert run_due_periodic_jobs() == []  # not due again yet


def test_a_claim_wins_once(workspace, owner):
    schedule = make(workspace, owner)
    period = dt.date(2030, 1, 1)
    assert schedules.claim(schedule.pk, period) is True
    assert schedules.claim(schedule.pk, period) is False
    assert schedules.claim(schedule.pk, period - dt.timedelta(days=1)) is False  # older
    assert schedules.claim(schedule.pk, period + dt.timedelta(days=1)) is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_postgres_one_wins():
    workspace = factories.workspace("race")
    owner = factories.owner_of(workspace)
    schedule = make(workspace, owner)
    period = dt.date(2030, 1, 1)
    barrier = threading.Barrier(4)
    won = []

    def claim():
        try:
            barrier.wait()
            won.append(schedules.claim(schedule.pk, period))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False, False, False, True]


def test_concurrent_sends_mail_once(workspace, owner, figures, monkeypatch):
    """A second job that runs while the first is still sending finds the period claimed."""
    schedule = never_sent(make(workspace, owner))
    period = dt.date(2026, 11, 10)
    inner = []
    real = schedules._deliver

    def deliver(schedule, period, recipients):
        if not inner:
            inner.append(schedules.send(schedule.pk, period))  # "the other worker"
        return real(schedule, period, recipients)

    monkeypatch.setattr(schedules, "_deliver", deliver)
    assert schedules.send(schedule.pk, period) == 1
    assert inner == [0]
    assert len(mail.outbox) == 1


def test_a_refused_mail_is_retried_without_resending(workspace, owner, figures, monkeypatch):
    schedule = never_sent(make(workspace, owner))
    period = dt.date(2026, 11, 10)

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", refuse)
    with pytest.raises(schedules.SendFailed):
        schedules.send(schedule.pk, period)
    schedule.refresh_from_db()
    assert schedule.last_period_sent is None  # released for the retry
    assert "mail server down" in schedule.last_error
    monkeypatch.undo()
    assert schedules.send(schedule.pk, period) == 1
    assert schedules.send(schedule.pk, period) == 0
    assert len(mail.outbox) == 1


# -- what ---------------------------------------------------------------------------------------


def test_the_mail_has_the_figures_their_change_and_the_link(workspace, owner, figures, settings):
    settings.LOKET_PUBLIC_URL = "https://loket.example"
    schedule = never_sent(make(workspace, owner, name="Support daily"))
    assert schedules.send(schedule.pk, dt.date(2026, 11, 10)) == 1
    (message,) = mail.outbox
    assert message.to == [owner.user.email]
    assert message.subject == "Support daily: Nov. 10, 2026"
    text = message.body
    assert "New conversations: 2 (+100%; before: 1)" in text
    assert "First response time: 20 min (-67%; before: 1 h 0 min)" in text  # (30 + 10) / 2
    assert "Resolutions: 1\n" in text  # none the day before: no change to show
    link = "https://loket.example/w/acme/reports/?from=2026-11-10&to=2026-11-10"
    assert link in text
    html, kind = message.alternatives[0]
    assert kind == "text/html"
    assert f'href="{link.replace("&", "&amp;")}"' in html
    assert "20 min" in html and "-67%" in html and "color:#067647" in html  # faster is better


def test_filters_business_time_and_the_agents_report(workspace, owner, agent, figures, settings):
    settings.LOKET_PUBLIC_URL = "https://loket.example"
    channel = factories.api_channel(workspace, name="Other")
    schedule = never_sent(make(workspace, owner, report="agents", business_time=True, priority=0))
    schedules.send(schedule.pk, dt.date(2026, 11, 10))
    text = mail.outbox[0].body
    assert "Priority: None" in text and "Business hours" in text
    assert f"- {owner.display_name}: 1 responses" in text
    assert f"- {agent.display_name}: 1 responses" in text
    assert "/w/acme/reports/agents/?from=2026-11-10&to=2026-11-10&priority=0&clock=business" in text

    # A channel with no conversations: every count is 0.
    other = never_sent(make(workspace, owner, channel_id=channel.pk))
    schedules.send(other.pk, dt.date(2026, 11, 10))
    assert "New conversations: 0" in mail.outbox[1].body
    assert f"channel={channel.pk}" in mail.outbox[1].body


def test_weekly_compares_with_the_week_before(workspace, owner, figures):
    schedule = never_sent(make(workspace, owner, frequency="weekly", weekday=1))
    schedules.send(schedule.pk, dt.date(2026, 11, 9))
    message = mail.outbox[0]
    assert "week 46" in message.subject
    assert "New conversations: 3\n" in message.body  # nothing the week before
    assert "from=2026-11-09&to=2026-11-15" in message.body


def test_each_recipient_in_their_language(workspace, owner, supervisor, figures):
    User.objects.filter(pk=supervisor.user_id).update(locale="nl")
    schedule = never_sent(make(workspace, owner, recipient_ids=[owner.pk, supervisor.pk]))
    schedules.send(schedule.pk, dt.date(2026, 11, 10))
    by_address = {m.to[0]: m for m in mail.outbox}
    english, dutch = by_address[owner.user.email], by_address[supervisor.user.email]
    assert "New conversations: 2" in english.body
    assert "The report, with the same days and filters:" in english.body
    assert "Nieuwe gesprekken: 2" in dutch.body and "New conversations" not in dutch.body
    assert "10 november 2026" in dutch.subject
    assert 'lang="nl"' in dutch.alternatives[0][0]

    # Without a language of their own: the workspace's.
    Workspace.objects.filter(pk=workspace.pk).update(locale="nl")
    schedule = never_sent(make(workspace, owner, recipient_ids=[owner.pk]))
    schedules.send(schedule.pk, dt.date(2026, 11, 10))
    assert "Nieuwe gesprekken: 2" in mail.outbox[-1].body


def test_the_csv_is_attached(workspace, owner, figures):
    schedule = never_sent(make(workspace, owner))
    schedules.send(schedule.pk, dt.date(2026, 11, 10))
    (name, content, kind) = mail.outbox[0].attachments[0]
    assert name == "acme-overview-2026-11-10.csv" and kind == "text/csv"
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    lines = text.splitlines()
    assert lines[1].startswith("2026-11-10,2,")  # the day: 2 new conversations
    assert lines[2].startswith("Total,2,")


# -- who ----------------------------------------------------------------------------------------


def test_who_left_or_lost_access_gets_nothing(workspace, owner, supervisor, admin, figures):
    schedule = never_sent(make(workspace, owner, recipient_ids=[owner.pk, supervisor.pk, admin.pk]))
    Membership.objects.filter(pk=supervisor.pk).update(role=Role.AGENT)  # lost access
    admin.delete()  # left
    schedules.send(schedule.pk, dt.date(2026, 11, 10))
    assert [m.to for m in mail.outbox] == [[owner.user.email]]
    # Deactivated users get nothing either.
    User.objects.filter(pk=owner.user_id).update(is_active=False)
    assert schedules.send(schedule.pk, dt.date(2026, 11, 11)) == 0
    assert len(mail.outbox) == 1


def test_recipients_and_filters_are_checked(workspace, owner, agent, supervisor):
    other = factories.workspace("other")
    stranger = add_member(other, factories.user("x@other.example"), role=Role.ADMIN)
    cases = [
        ({"recipient_ids": []}, "recipient_ids", "at least one recipient"),
        ({"recipient_ids": [agent.pk]}, "recipient_ids", "cannot read reports"),
        ({"recipient_ids": [stranger.pk]}, "recipient_ids", "not a member of this workspace"),
        ({"frequency": "weekly"}, "weekday", "weekday"),
        ({"frequency": "monthly"}, "frequency", "daily or weekly"),
        ({"hour": 24}, "hour", "0 to 23"),
        ({"name": "  "}, "name", "name"),
        ({"report": "heatmap"}, "report", "overview or the agents"),
        ({"channel_id": factories.api_channel(other).pk}, "channel_id", "no such channel"),
        ({"priority": 9}, "priority", "priority"),
    ]
    for fields, field, text in cases:
        with pytest.raises(schedules.InvalidSchedule) as caught:
            make(workspace, owner, **fields)
        assert caught.value.field == field and text in str(caught.value).lower(), fields
    with pytest.raises(NotAllowed):
        make(workspace, agent, recipient_ids=[supervisor.pk])
    schedule = make(workspace, supervisor, recipient_ids=[supervisor.pk, owner.pk])
    assert schedules.values_of(schedule)["recipient_ids"] == sorted([supervisor.pk, owner.pk])
    assert schedule.created_by == supervisor
