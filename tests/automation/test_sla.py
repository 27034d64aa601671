"""SLA policies (loket.automation.sla): due times in business or calendar hours (daylight-saving
days and holidays included), pauses while pending, next responses, priority changes, resolution,
and the periodic check that warns and records each breach once. The clock is frozen
(loket.automation.clock.frozen) and moved by hand."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import transaction

from loket import events
from loket.automation import clock, sla
from loket.automation.models import SlaBreach, SlaTarget, SlaWarning
from loket.inbox import listing
from loket.inbox.models import Conversation, Notification, Priority
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.outbound import reply
from loket.jobs.policy import periodic_jobs
from loket.tenancy.services import NotAllowed
from tests import factories
from tests.connectors.providers import run_tasks

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
EVERY_DAY = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
MONDAY = dt.date(2026, 12, 7)
CAPTURED: list[events.Event] = []


def capture(event: events.Event) -> None:
    CAPTURED.append(event)


def at(day: dt.date, hhmm: str) -> dt.datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=AMS)


def monday(hhmm: str) -> dt.datetime:
    return at(MONDAY, hhmm)


@pytest.fixture(autouse=True)
def sla_events(settings):
    settings.LOKET_EVENT_SUBSCRIBERS = [
        *settings.LOKET_EVENT_SUBSCRIBERS,
        "tests.automation.test_sla.capture",
    ]
    events._subscribers.cache_clear()
    CAPTURED.clear()
    yield CAPTURED
    events._subscribers.cache_clear()


@pytest.fixture
def office(transactional_db, workspace):
    workspace.time_zone = "Europe/Amsterdam"
    workspace.business_hours = OFFICE
    workspace.save()
    return workspace


@pytest.fixture
def channel(office):
    return factories.api_channel(office, name="Shop")


@pytest.fixture
def agent(office):
    return factories.agent(office, "anna@shop.example")


def policy(workspace, *, business_hours=True, targets=None, **kw):
    return sla.create_policy(
        workspace,
        name=kw.pop("name", "Standard"),
        business_hours=business_hours,
        targets=targets
        or {
            "0": {"first_response": 60, "next_response": 30, "resolution": 480},
            "4": {"first_response": 15, "next_response": 10, "resolution": 120},
        },
        is_default=kw.pop("is_default", True),
        **kw,
    )


def customer_writes(channel, moment, text="Hi", contact_id="cust-1"):
    with clock.frozen(moment):
        result = factories.inbound(channel, text, contact_id=contact_id, name="Sanne")
    return Conversation.objects.get(pk=result.conversation_id)


def fresh(conversation) -> Conversation:
    return Conversation.objects.select_related("sla_policy", "workspace", "channel").get(
        pk=conversation.pk
    )


def agent_replies(conversation, agent, moment):
    with clock.frozen(moment):
        reply(fresh(conversation), author=agent, text="On it!")
    return fresh(conversation)


def set_status(conversation, status, moment, **kw):
    with clock.frozen(moment):
        update_conversation(fresh(conversation), actor=None, status=status, **kw)
    return fresh(conversation)


def check(moment) -> int:
    with clock.frozen(moment):
        return sla.check_due()


def sla_events_of(conversation):
    return [
        (e.target, e.state)
        for e in CAPTURED
        if isinstance(e, events.SlaChanged) and e.conversation_id == conversation.pk
    ]


# -- Due times --------------------------------------------------------------------------------
def test_business_hours_carry_a_late_conversation_over_to_the_next_morning(office, channel):
    policy(office)
    conversation = customer_writes(channel, monday("16:30"))
    assert conversation.sla_policy is not None
    assert conversation.first_response_due_at == at(MONDAY + dt.timedelta(days=1), "09:30")
    # 8 business hours: 30 minutes on Monday, the rest on Tuesday.
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "16:30")
    assert conversation.next_response_due_at is None
    assert conversation.sla_due_at == conversation.first_response_due_at


def test_calendar_hours_count_the_night(office, channel):
    policy(office, business_hours=False)
    conversation = customer_writes(channel, monday("16:30"))
    assert conversation.first_response_due_at == monday("17:30")
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "00:30")


def test_a_daylight_saving_day_counts_real_hours(office, channel):
    office.business_hours = EVERY_DAY
    office.save()
    policy(office, targets={"0": {"first_response": 120}})
    saturday = dt.date(2026, 3, 28)  # the clocks go forward on Sunday 29 March at 02:00
    conversation = customer_writes(channel, at(saturday, "16:00"))
    # One business hour on Saturday (UTC+1), one on Sunday from 09:00 (UTC+2).
    due = conversation.first_response_due_at
    assert due == at(dt.date(2026, 3, 29), "10:00")
    assert due.astimezone(dt.UTC).hour == 8


def test_a_holiday_is_skipped(office, channel):
    office.holidays = ["2026-12-08"]
    office.save()
    policy(office)
    conversation = customer_writes(channel, monday("16:30"))
    assert conversation.first_response_due_at == at(MONDAY + dt.timedelta(days=2), "09:30")


def test_a_channel_policy_wins_over_the_default(office, channel):
    policy(office)
    other = factories.api_channel(office, name="VIP")
    vip = policy(
        office,
        name="VIP",
        is_default=False,
        targets={"0": {"first_response": 5}},
        channels=[other],
    )
    conversation = customer_writes(other, monday("10:00"), contact_id="vip-1")
    assert conversation.sla_policy_id == vip.pk
    assert conversation.first_response_due_at == monday("10:05")
    assert conversation.resolution_due_at is None  # VIP has no resolution target


def test_no_policy_no_due_times(office, channel):
    conversation = customer_writes(channel, monday("10:00"))
    assert conversation.sla_policy_id is None and conversation.sla_due_at is None


def test_a_disabled_default_policy_applies_to_nobody(office, channel):
    policy(office, enabled=False)
    conversation = customer_writes(channel, monday("10:00"))
    assert conversation.sla_policy_id is None


# -- Responses --------------------------------------------------------------------------------
def test_first_reply_meets_the_first_response_and_a_customer_reply_starts_the_next(
    office, channel, agent
):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    conversation = agent_replies(conversation, agent, monday("10:20"))
    assert conversation.first_response_due_at is None
    assert conversation.next_response_due_at is None
    assert conversation.sla_clock["outcome"] == {"first_response": "met"}
    assert conversation.sla_due_at == conversation.resolution_due_at

    conversation = customer_writes(channel, monday("11:00"), "Still there?")
    assert conversation.next_response_due_at == monday("11:30")
    assert conversation.sla_due_at == monday("11:30")
    # A second customer message does not restart the clock.
    conversation = customer_writes(channel, monday("11:10"), "Hello??")
    assert conversation.next_response_due_at == monday("11:30")

    conversation = agent_replies(conversation, agent, monday("11:20"))
    assert conversation.next_response_due_at is None
    assert conversation.sla_clock["outcome"]["next_response"] == "met"
    assert not SlaBreach.objects.exists()


def test_a_late_first_reply_is_recorded_as_a_breach(office, channel, agent):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    conversation = agent_replies(conversation, agent, monday("11:30"))
    [breach] = SlaBreach.objects.all()
    assert (breach.target, breach.due_at) == (SlaTarget.FIRST_RESPONSE, monday("11:00"))
    assert conversation.sla_clock["outcome"] == {"first_response": "breached"}


def test_an_automatic_reply_does_not_count_as_a_response(office, channel):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    with clock.frozen(monday("10:01")):
        reply(fresh(conversation), author=None, text="Thanks, we'll be with you soon.")
    assert fresh(conversation).first_response_due_at == monday("11:00")


# -- Pause, priority, resolution --------------------------------------------------------------
def test_pending_pauses_the_clock_and_open_resumes_it(office, channel, agent):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    conversation = agent_replies(conversation, agent, monday("10:10"))
    # 480 business minutes from Monday 10:00: Monday 7 hours, Tuesday until 10:00.
    tuesday = MONDAY + dt.timedelta(days=1)
    assert conversation.resolution_due_at == at(tuesday, "10:00")

    conversation = set_status(conversation, "pending", monday("11:00"))
    assert conversation.sla_paused_at == monday("11:00")
    assert conversation.resolution_due_at is None and conversation.sla_due_at is None
    assert check(at(tuesday, "12:00")) == 0  # nothing runs while paused

    # The customer answers on Tuesday at 09:30: 6½ business hours of pause added.
    conversation = customer_writes(channel, at(tuesday, "09:30"), "Here is the photo")
    assert conversation.status == "open" and conversation.sla_paused_at is None
    assert conversation.resolution_due_at == at(tuesday, "16:30")
    assert conversation.next_response_due_at == at(tuesday, "10:00")


def test_a_priority_change_recomputes_the_due_times(office, channel):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    assert conversation.first_response_due_at == monday("11:00")
    with clock.frozen(monday("10:05")):
        update_conversation(fresh(conversation), actor=None, priority=Priority.URGENT)
    conversation = fresh(conversation)
    assert conversation.first_response_due_at == monday("10:15")
    assert conversation.resolution_due_at == monday("12:00")
    # A priority without targets stops the clocks showing.
    with clock.frozen(monday("10:06")):
        update_conversation(fresh(conversation), actor=None, priority=Priority.LOW)
    assert fresh(conversation).sla_due_at is None


def test_resolving_in_time_meets_the_resolution(office, channel, agent):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    conversation = agent_replies(conversation, agent, monday("10:10"))
    conversation = set_status(conversation, "resolved", monday("15:00"))
    assert conversation.sla_due_at is None and conversation.resolution_due_at is None
    assert conversation.sla_clock["outcome"] == {"first_response": "met", "resolution": "met"}
    assert not SlaBreach.objects.exists()


def test_resolving_late_records_the_breach_and_a_reopening_restarts_the_clock(
    office, channel, agent
):
    policy(office, targets={"0": {"first_response": 60, "next_response": 30, "resolution": 60}})
    conversation = customer_writes(channel, monday("10:00"))
    conversation = agent_replies(conversation, agent, monday("10:10"))
    conversation = set_status(conversation, "resolved", monday("11:30"))
    [breach] = SlaBreach.objects.all()
    assert (breach.target, breach.due_at) == ("resolution", monday("11:00"))
    assert conversation.sla_clock["outcome"]["resolution"] == "breached"

    conversation = customer_writes(channel, monday("14:00"), "It broke again")
    assert conversation.status == "open"
    assert conversation.resolution_due_at == monday("15:00")
    assert conversation.next_response_due_at == monday("14:30")


# -- The periodic check -----------------------------------------------------------------------
def test_at_risk_then_breached_each_announced_once(office, channel, agent, sla_events):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    with clock.frozen(monday("10:00")):
        update_conversation(fresh(conversation), actor=None, assignee=agent)
    assert fresh(conversation).sla_check_at == monday("10:48")  # 80 % of 60 minutes

    assert check(monday("10:30")) == 0
    assert check(monday("10:50")) == 1
    assert sla_events_of(conversation) == [("first_response", "at_risk")]
    assert check(monday("10:55")) == 0  # nothing new to look at
    assert check(monday("11:01")) == 1
    assert check(monday("11:02")) == 0
    assert sla_events_of(conversation) == [
        ("first_response", "at_risk"),
        ("first_response", "breached"),
    ]
    [warning] = SlaWarning.objects.all()
    [breach] = SlaBreach.objects.all()
    assert warning.due_at == breach.due_at == monday("11:00")
    assert breach.breached_at == monday("11:01")
    notified = Notification.objects.filter(recipient=agent, kind="sla").count()
    assert notified == 2
    [event] = [e for e in CAPTURED if isinstance(e, events.SlaChanged) and e.state == "breached"]
    assert dt.datetime.fromisoformat(event.due_at) == monday("11:00")
    conversation = fresh(conversation)
    assert conversation.first_response_due_at == monday("11:00")  # still shown, as breached
    assert sla.chip_state(conversation.sla_due_at, conversation.sla_warn_at, monday("11:02")) == (
        "breached"
    )
    # The agent's late reply ends the target without a second breach.
    agent_replies(conversation, agent, monday("11:05"))
    assert SlaBreach.objects.count() == 1


def test_a_due_time_passed_before_the_first_look_is_only_breached(office, channel, sla_events):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    assert check(monday("12:00")) == 1
    assert sla_events_of(conversation) == [("first_response", "breached")]


def test_two_workers_with_the_same_stale_clock_record_the_breach_once(office, channel, sla_events):
    policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    conversation = fresh(conversation)
    stale = dict(conversation.sla_clock)
    for _worker in range(2):
        state = {key: dict(value) for key, value in stale.items()}
        with clock.frozen(monday("11:30")), transaction.atomic():
            sla._check(conversation, conversation.sla_policy, state, monday("11:30"))
    assert SlaBreach.objects.count() == 1
    assert sla_events_of(conversation) == [("first_response", "breached")]


def test_minutes_before_as_the_warning(office, channel, agent, sla_events):
    policy(office, warn_unit="minutes", warn_value=10)
    conversation = customer_writes(channel, monday("10:00"))
    assert fresh(conversation).sla_warn_at == monday("10:50")


# -- The list ---------------------------------------------------------------------------------
def test_the_list_sorts_by_the_nearest_due_time(office, channel, agent):
    policy(office)
    owner = factories.owner_of(office)
    late = customer_writes(channel, monday("10:00"), contact_id="a")
    early = customer_writes(channel, monday("09:30"), contact_id="b")
    urgent = customer_writes(channel, monday("10:30"), contact_id="c")
    none = customer_writes(channel, monday("10:40"), contact_id="d")
    with clock.frozen(monday("10:31")):
        update_conversation(fresh(urgent), actor=None, priority=Priority.URGENT)  # due 10:45
        sla.apply_policy(fresh(none), None)
    view = listing.resolve_view(owner, "all")
    queryset = listing.conversations(owner, view, "open")
    first = listing.page(queryset, "sla", None, limit=2)
    assert [c.pk for c in first.items] == [early.pk, urgent.pk]
    second = listing.page(queryset, "sla", first.next_cursor, limit=2)
    assert [c.pk for c in second.items] == [late.pk]
    assert second.next_cursor is None


# -- Policy changes and the job ---------------------------------------------------------------
def test_changing_the_targets_recomputes_running_clocks_and_deleting_clears_them(office, channel):
    standard = policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    with clock.frozen(monday("10:05")):
        sla.update_policy(standard, targets={"0": {"first_response": 30}})
        run_tasks()
    conversation = fresh(conversation)
    assert conversation.first_response_due_at == monday("10:30")
    assert conversation.resolution_due_at is None
    with clock.frozen(monday("10:06")):
        sla.update_policy(standard, enabled=False)
        run_tasks()
    assert fresh(conversation).sla_due_at is None
    with clock.frozen(monday("10:07")):
        sla.update_policy(standard, enabled=True)
        run_tasks()
    assert fresh(conversation).first_response_due_at == monday("10:30")
    sla.delete_policy(standard)
    conversation = fresh(conversation)
    assert conversation.sla_policy_id is None and conversation.sla_due_at is None
    assert conversation.sla_clock == {}


def test_apply_policy_puts_a_conversation_under_another_policy(office, channel):
    policy(office)
    vip = policy(office, name="VIP", is_default=False, targets={"0": {"first_response": 5}})
    conversation = customer_writes(channel, monday("10:00"))
    with clock.frozen(monday("10:02")):
        sla.apply_policy(fresh(conversation), vip)
    conversation = fresh(conversation)
    assert conversation.sla_policy_id == vip.pk
    # The clock that was running keeps its start: only the target changed.
    assert conversation.first_response_due_at == monday("10:05")
    assert conversation.resolution_due_at is None
    with clock.frozen(monday("10:03")):
        sla.apply_policy(fresh(conversation), vip)  # again: nothing changes
    assert fresh(conversation).first_response_due_at == monday("10:05")
    with clock.frozen(monday("10:04")):
        sla.apply_policy(fresh(conversation), None)
    assert fresh(conversation).sla_due_at is None and fresh(conversation).sla_clock == {}
    with clock.frozen(monday("10:06")):
        sla.apply_policy(fresh(conversation), vip)  # without a policy before: starts now
    assert fresh(conversation).first_response_due_at == monday("10:11")
    other = factories.workspace("bravo")
    theirs = policy(other, name="Theirs")
    with pytest.raises(NotAllowed):
        sla.apply_policy(conversation, theirs)


def test_snoozed_keeps_running_and_calendar_pauses_count_the_night(office, channel, agent):
    policy(office, business_hours=False)
    conversation = customer_writes(channel, monday("16:00"))
    conversation = agent_replies(conversation, agent, monday("16:05"))
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "00:00")
    conversation = set_status(conversation, "snoozed", monday("16:10"), snoozed_until=None)
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "00:00")
    conversation = set_status(conversation, "pending", monday("17:00"))
    conversation = set_status(conversation, "open", monday("19:00"))
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "02:00")


def test_the_check_is_a_periodic_job_every_30_seconds():
    [job] = [p for p in periodic_jobs() if p.name.endswith("check_sla_due_times")]
    assert job.every_seconds == 30


def test_a_conversation_resolved_while_its_policy_was_disabled_does_not_come_back_late(
    office, channel
):
    standard = policy(office)
    conversation = customer_writes(channel, monday("10:00"))
    with clock.frozen(monday("10:05")):
        sla.update_policy(standard, enabled=False)
        run_tasks()
    set_status(conversation, "resolved", monday("10:10"))
    with clock.frozen(monday("10:15")):
        sla.update_policy(standard, enabled=True)
        run_tasks()
    conversation = customer_writes(channel, monday("15:00"), "Me again")
    assert conversation.resolution_due_at == at(MONDAY + dt.timedelta(days=1), "15:00")
    assert conversation.first_response_due_at == monday("16:00")
    assert check(monday("15:01")) == 0
