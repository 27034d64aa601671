"""Every metric definition of loket.reports.metrics on hand-built timelines: first and next
response times in calendar and business hours (across midnight, weekends, holidays and a night
shift), bots, automatic replies, rules and notes never counting as responses, pending pausing
the resolution clock (snoozed not), reopening, replies per resolution, bot-resolved and handoff;
then the same read from a stored conversation."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from loket.inbox.models import AuthorType, Conversation, ConversationStatus, MessageKind
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.outbound import reply
from loket.reports import metrics
from loket.reports.metrics import AUTOMATIC, BOT, CUSTOMER, RESPONSE, STATUS, Entry
from loket.tenancy.hours import Schedule
from tests import factories

AMS = ZoneInfo("Europe/Amsterdam")
OFFICE = Schedule._build(
    {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    ["2026-12-25"],
    "Europe/Amsterdam",
)
# A night desk: 22:00 to 02:00 on weekdays, across midnight (ranges in any order).
NIGHTS = Schedule._build(
    {day: [["22:00", "24:00"], ["00:00", "02:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    [],
    "Europe/Amsterdam",
)
ALWAYS = Schedule._build({}, [], "UTC")

MINUTE = 60
HOUR = 3600


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """December 2026, Amsterdam time (the 4th is a Friday, the 7th a Monday)."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=AMS)


def customer(when):
    return Entry(when, CUSTOMER)


def agent(when, member=7):
    return Entry(when, RESPONSE, member_id=member)


def status(when, new):
    return Entry(when, STATUS, status=new)


def test_first_response_in_calendar_and_business_time_across_a_weekend():
    found = metrics.facts([customer(at(4, 16, 55)), agent(at(7, 9, 5))], OFFICE)
    assert found.created_at == at(4, 16, 55)
    assert found.first_response.seconds == (2 * 24 + 16) * HOUR + 10 * MINUTE
    assert found.first_response.business_seconds == 10 * MINUTE  # 5 on Friday, 5 on Monday
    assert found.first_response.member_id == 7 == found.first_responder_id
    assert found.next_responses == [] and found.responses == 1


def test_a_holiday_is_not_business_time():
    # Thursday 24th 16:00 → Monday 28th 10:00; Friday the 25th is a holiday.
    found = metrics.facts([customer(at(24, 16)), agent(at(28, 10))], OFFICE)
    assert found.first_response.business_seconds == 2 * HOUR


def test_business_hours_across_midnight():
    # Tuesday 23:30 → Wednesday 01:30: all of it inside the night desk's hours.
    found = metrics.facts([customer(at(8, 23, 30)), agent(at(9, 1, 30))], NIGHTS)
    assert found.first_response.seconds == 2 * HOUR
    assert found.first_response.business_seconds == 2 * HOUR
    # Wednesday 01:30 → Wednesday 23:00: 30 min before 02:00 and 60 min after 22:00.
    later = metrics.facts([customer(at(9, 1, 30)), agent(at(9, 23))], NIGHTS)
    assert later.first_response.business_seconds == 90 * MINUTE


def test_bots_automatic_replies_and_notes_are_not_responses():
    found = metrics.facts(
        [
            customer(at(7, 10)),
            Entry(at(7, 10, 0), AUTOMATIC),  # "We got your message"
            Entry(at(7, 10, 1), BOT),
            Entry(at(7, 10, 2), BOT),
            agent(at(7, 10, 30)),
        ],
        OFFICE,
    )
    assert found.first_response.seconds == 30 * MINUTE
    assert found.bot_messages == 2 and found.responses == 1


def test_next_responses_measure_from_the_oldest_unanswered_message():
    found = metrics.facts(
        [
            customer(at(7, 9)),
            agent(at(7, 9, 10), member=1),
            customer(at(7, 11)),
            customer(at(7, 11, 20)),  # still the 11:00 wait
            agent(at(7, 12), member=2),
            agent(at(7, 12, 5), member=2),  # nobody waiting: no sample
            customer(at(7, 16, 30)),
            agent(at(8, 9, 30), member=1),
        ],
        OFFICE,
    )
    assert found.first_response.seconds == 10 * MINUTE
    waits = [(d.seconds, d.business_seconds, d.member_id) for d in found.next_responses]
    assert waits == [
        (HOUR, HOUR, 2),
        (17 * HOUR, HOUR, 1),  # 30 min on Monday, 30 min on Tuesday
    ]


def test_a_conversation_the_team_started_has_no_first_response():
    found = metrics.facts([agent(at(7, 9)), customer(at(7, 10)), agent(at(7, 10, 15))], OFFICE)
    assert found.first_response is None
    assert [d.seconds for d in found.next_responses] == [15 * MINUTE]


def test_pending_pauses_the_resolution_clock_and_snoozed_does_not():
    found = metrics.facts(
        [
            customer(at(7, 9)),
            agent(at(7, 9, 30)),
            status(at(7, 9, 30), "pending"),  # waiting for the customer: 2 h 30 paused
            customer(at(7, 12)),  # the customer's answer wakes it
            agent(at(7, 12, 10)),
            status(at(7, 13), "snoozed"),  # the team's choice: counted
            status(at(7, 14), "open"),
            status(at(7, 15), "resolved"),
        ],
        OFFICE,
    )
    (resolution,) = found.resolutions
    assert resolution.at == at(7, 15)
    assert resolution.seconds == 6 * HOUR - 2.5 * HOUR
    assert resolution.business_seconds == 3.5 * HOUR
    assert resolution.responses == 2 and not resolution.by_bot and not resolution.handoff
    assert resolution.reopened_from is None


def test_pending_to_resolved_and_pending_overnight_in_business_hours():
    found = metrics.facts(
        [
            customer(at(4, 16)),
            agent(at(4, 16, 30)),
            status(at(4, 16, 30), "pending"),  # Friday 16:30 → Monday 11:00 paused
            status(at(7, 11), "resolved"),
        ],
        OFFICE,
    )
    (resolution,) = found.resolutions
    assert resolution.seconds == 30 * MINUTE and resolution.business_seconds == 30 * MINUTE


def test_reopening_starts_a_new_stretch():
    found = metrics.facts(
        [
            customer(at(7, 9)),
            agent(at(7, 9, 20)),
            status(at(7, 10), "resolved"),
            customer(at(8, 9)),  # reopens
            agent(at(8, 9, 40)),
            agent(at(8, 9, 45)),
            status(at(8, 11), "closed"),
            status(at(8, 12), "open"),  # a member reopens it
            status(at(8, 12, 30), "resolved"),
        ],
        OFFICE,
    )
    assert found.reopened_at == [at(8, 9), at(8, 12)]
    first, second, third = found.resolutions
    assert (first.seconds, first.responses, first.reopened_from) == (HOUR, 1, None)
    assert (second.seconds, second.responses, second.reopened_from) == (2 * HOUR, 2, at(8, 9))
    assert (third.seconds, third.responses) == (30 * MINUTE, 0)
    assert not third.by_bot  # no bot either
    # The reopening customer's wait is a next response, not a second first response.
    assert [d.seconds for d in found.next_responses] == [40 * MINUTE]
    # Closing a resolved conversation is not a second resolution.
    again = metrics.facts(
        [customer(at(7, 9)), status(at(7, 10), "resolved"), status(at(7, 11), "closed")], OFFICE
    )
    assert len(again.resolutions) == 1


def test_bot_resolved_and_handoff():
    by_bot = metrics.facts(
        [customer(at(7, 9)), Entry(at(7, 9), BOT), status(at(7, 9, 2), "resolved")], OFFICE
    )
    (resolution,) = by_bot.resolutions
    assert resolution.by_bot and not resolution.handoff and resolution.responses == 0
    # The bot's resolution ended the wait: no response sample.
    assert by_bot.first_response is None and by_bot.next_responses == []

    handed = metrics.facts(
        [
            customer(at(7, 9)),
            Entry(at(7, 9), BOT),
            Entry(at(7, 9, 1), BOT),
            agent(at(7, 9, 20)),
            status(at(7, 9, 30), "resolved"),
        ],
        OFFICE,
    )
    (resolution,) = handed.resolutions
    assert resolution.handoff and not resolution.by_bot
    assert handed.first_response.seconds == 20 * MINUTE


def test_always_open_counts_every_second():
    found = metrics.facts([customer(at(5, 23)), agent(at(6, 1))], ALWAYS)
    assert found.first_response.business_seconds == found.first_response.seconds == 2 * HOUR


@pytest.mark.django_db
def test_a_stored_conversation(workspace, owner, api_channel):
    result = factories.inbound(api_channel, "Where is my order?")
    conversation = Conversation.objects.get(pk=result.conversation_id)
    reply(conversation, author=None, author_type=AuthorType.BOT, text="Let me look.")
    reply(conversation, author=owner, text="Internal remark", kind=MessageKind.NOTE)
    reply(conversation, author=None, text="Rule says hi", data={"rule_id": 3})
    reply(conversation, author=owner, text="It ships today.")
    update_conversation(conversation, actor=owner, status=ConversationStatus.PENDING)
    update_conversation(conversation, actor=owner, status=ConversationStatus.RESOLVED)
    factories.inbound(api_channel, "Thanks!")  # reopens it
    found = metrics.conversation_facts(Conversation.objects.get(pk=conversation.pk))
    assert found.customer_messages == 2 and found.bot_messages == 1 and found.responses == 1
    assert found.first_responder_id == owner.pk
    assert found.first_response.seconds >= 0
    (resolution,) = found.resolutions
    assert resolution.responses == 1 and resolution.handoff
    assert len(found.reopened_at) == 1


def test_a_survey_answer_is_no_reopening_and_no_second_resolution():
    found = metrics.facts(
        [
            customer(at(7, 9)),
            agent(at(7, 9, 20)),
            status(at(7, 10), "resolved"),
            Entry(at(7, 11), AUTOMATIC),  # the survey
            customer(at(7, 12)),  # "4": reopens for a moment
            Entry(at(7, 12, 1), STATUS, status="resolved", survey_answered=True),
            customer(at(8, 9)),  # a real question later: a reopening
            agent(at(8, 9, 30)),
            status(at(8, 10), "resolved"),
        ],
        OFFICE,
    )
    assert found.reopened_at == [at(8, 9)]
    assert [r.at for r in found.resolutions] == [at(7, 10), at(8, 10)]
    assert [d.seconds for d in found.next_responses] == [30 * MINUTE]
    assert metrics.entry_of(
        "out",
        "activity",
        "system",
        None,
        {"action": "status_changed", "status": "resolved", "via": "csat"},
        at(7, 12),
    ).survey_answered
