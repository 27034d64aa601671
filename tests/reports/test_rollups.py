"""The reports' tables kept current in the background (loket.reports.rollups) and read back
(loket.reports.queries): stored conversations become facts on workspace-local days, the days
are summed per channel, team, member and priority, a late message and a reopening correct the
sums of the days they touch, figures are derived by the metric definitions, the heatmap counts
incoming conversations per weekday and hour, and each number lists the conversations behind
it — never another workspace's."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from loket.inbox.models import Conversation, ConversationStatus, Message
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.outbound import reply
from loket.reports import queries, rollups
from loket.reports.models import DailyRollup, ReportFact
from loket.reports.queries import Filters
from loket.tenancy.models import Workspace
from tests import factories

pytestmark = pytest.mark.django_db

AMS = ZoneInfo("Europe/Amsterdam")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=AMS)


def conversation_with(channel, agent, times, *, contact="c-1", resolve_at=None):
    """A customer message at ``times[0]``, the agent's replies at the rest (moved there after
    being stored), resolved at ``resolve_at`` when given."""
    result = factories.inbound(channel, "Hello?", contact_id=contact)
    conversation = Conversation.objects.get(pk=result.conversation_id)
    Message.objects.filter(pk=result.message_id).update(created_at=times[0])
    for when in times[1:]:
        sent = reply(conversation, author=agent, text="Hi!")
        Message.objects.filter(pk=sent.pk).update(created_at=when)
    if resolve_at is not None:
        update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
        Message.objects.filter(conversation=conversation, kind="activity").update(
            created_at=resolve_at
        )
    return Conversation.objects.get(pk=conversation.pk)


@pytest.fixture
def amsterdam(workspace):
    Workspace.objects.filter(pk=workspace.pk).update(time_zone="Europe/Amsterdam")
    workspace.refresh_from_db()
    return workspace


def test_facts_days_and_sums(amsterdam, owner, agent, api_channel):
    # Created late on the 2nd in Amsterdam (the 2nd is still the 2nd there, the 3rd in UTC+0
    # terms is not used): first response 30 min later, resolved an hour after that.
    first = conversation_with(
        api_channel, owner, [at(2, 23, 0), at(2, 23, 30)], resolve_at=at(3, 0, 30)
    )
    second = conversation_with(api_channel, agent, [at(3, 10), at(3, 10, 10)], contact="c-2")
    rollups.catch_up()

    facts = {(f.conversation_id, f.kind): f for f in ReportFact.objects.all()}
    assert facts[(first.pk, "created")].day == dt.date(2026, 11, 2)
    assert facts[(first.pk, "created")].hour == 23
    assert facts[(first.pk, "resolved")].day == dt.date(2026, 11, 3)
    assert facts[(first.pk, "first_response")].member_id == owner.pk
    assert facts[(second.pk, "first_response")].member_id == agent.pk

    day2 = queries.totals(amsterdam.pk, dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert day2["created"] == 1 and day2["first_response_seconds"] == 30 * 60
    both = queries.totals(amsterdam.pk, dt.date(2026, 11, 2), dt.date(2026, 11, 3))
    assert (both["created"], both["resolved"], both["first_responses"]) == (2, 1, 2)
    assert both["first_response_seconds"] == (30 + 10) * 60 / 2
    assert both["resolution_seconds"] == 90 * 60 and both["replies_per_resolution"] == 1
    assert both["bot_resolved_share"] == 0

    per_member = queries.by_dimension(
        amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30), "member_id"
    )
    assert per_member[owner.pk]["first_responses"] == 1
    assert per_member[agent.pk]["first_response_seconds"] == 10 * 60
    only_agent = queries.totals(
        amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30), Filters(member_id=agent.pk)
    )
    assert only_agent["first_responses"] == 1

    days = queries.series(amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 4))
    assert [d for d, _ in days] == [dt.date(2026, 11, n) for n in (1, 2, 3, 4)]
    assert [f["created"] for _, f in days] == [0, 1, 1, 0]
    weeks = queries.series(amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 10), by="week")
    assert [(d, f["created"]) for d, f in weeks] == [
        (dt.date(2026, 10, 26), 0),
        (dt.date(2026, 11, 2), 2),
        (dt.date(2026, 11, 9), 0),
    ]

    grid = queries.heatmap(amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert grid[0][23] == 1  # Monday the 2nd, 23:00
    assert grid[1][10] == 1  # Tuesday the 3rd, 10:00
    assert sum(map(sum, grid)) == 2

    behind = queries.conversations_behind(
        amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30), "resolved"
    )
    assert list(behind) == [first]


def test_a_late_message_and_a_reopening_correct_the_sums(amsterdam, owner, api_channel):
    conversation = conversation_with(
        api_channel, owner, [at(5, 9), at(5, 12)], resolve_at=at(5, 13)
    )
    rollups.catch_up()
    day5 = (dt.date(2026, 11, 5), dt.date(2026, 11, 5))
    assert queries.totals(amsterdam.pk, *day5)["first_response_seconds"] == 3 * 3600

    # A reply that was sent at 09:30 reaches Loket only now (an import, a slow provider).
    late = reply(conversation, author=owner, text="Sorry, earlier answer")
    Message.objects.filter(pk=late.pk).update(created_at=at(5, 9, 30))
    rollups.catch_up()
    assert queries.totals(amsterdam.pk, *day5)["first_response_seconds"] == 30 * 60

    # The customer writes again on the 6th: reopened there, still resolved once on the 5th.
    again = factories.inbound(api_channel, "One more thing")
    Message.objects.filter(pk=again.message_id).update(created_at=at(6, 8))
    rollups.catch_up()
    assert queries.totals(amsterdam.pk, *day5)["resolved"] == 1
    day6 = queries.totals(amsterdam.pk, dt.date(2026, 11, 6), dt.date(2026, 11, 6))
    assert (day6["reopened"], day6["created"], day6["resolved"]) == (1, 0, 0)
    heat = queries.heatmap(amsterdam.pk, dt.date(2026, 11, 6), dt.date(2026, 11, 6))
    assert heat[4][8] == 1  # Friday 08:00: a reopening came in

    # Nothing new: nothing read, nothing changed.
    before = list(DailyRollup.objects.order_by("pk").values())
    assert rollups.catch_up() == 0
    assert list(DailyRollup.objects.order_by("pk").values()) == before


def test_a_day_whose_facts_all_moved_away_is_emptied(amsterdam, owner, api_channel):
    result = factories.inbound(api_channel, "Hi")
    Message.objects.filter(pk=result.message_id).update(created_at=at(7, 9))
    rollups.catch_up()
    assert queries.totals(amsterdam.pk, dt.date(2026, 11, 7), dt.date(2026, 11, 7))["created"] == 1
    # Its first message turns out to be from the 8th after all (a corrected import).
    Message.objects.filter(pk=result.message_id).update(created_at=at(8, 9))
    rollups.remake([result.conversation_id])  # what the sweep does for a new message
    rollups.roll({(amsterdam.pk, dt.date(2026, 11, 7)), (amsterdam.pk, dt.date(2026, 11, 8))})
    assert queries.totals(amsterdam.pk, dt.date(2026, 11, 7), dt.date(2026, 11, 7))["created"] == 0
    assert queries.totals(amsterdam.pk, dt.date(2026, 11, 8), dt.date(2026, 11, 8))["created"] == 1


def test_workspaces_and_comparison(amsterdam, owner, api_channel):
    conversation_with(api_channel, owner, [at(10, 9), at(10, 9, 5)])
    conversation_with(api_channel, owner, [at(3, 9), at(3, 9, 20)], contact="c-2")
    other = factories.workspace("other")
    other_owner = factories.owner_of(other)
    theirs = conversation_with(factories.api_channel(other), other_owner, [at(10, 9), at(10, 10)])
    rollups.catch_up()
    now, before, (start, end) = queries.compare(
        amsterdam.pk, dt.date(2026, 11, 8), dt.date(2026, 11, 14)
    )
    assert (start, end) == (dt.date(2026, 11, 1), dt.date(2026, 11, 7))
    assert now["created"] == 1 and now["first_response_seconds"] == 5 * 60
    assert before["created"] == 1 and before["first_response_seconds"] == 20 * 60
    theirs_total = queries.totals(other.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert theirs_total["created"] == 1
    assert list(
        queries.conversations_behind(
            amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30), "created"
        )
    ) == list(Conversation.objects.filter(workspace=amsterdam).order_by("-last_message_at", "-pk"))
    assert theirs not in queries.conversations_behind(
        amsterdam.pk, dt.date(2026, 11, 1), dt.date(2026, 11, 30), "created"
    )
    # A rebuild (after a time-zone change, say) gives the same sums.
    sums = list(DailyRollup.objects.filter(workspace=amsterdam).values(*queries.FIELDS, "day"))
    assert rollups.rebuild(amsterdam.pk) == 2
    again = list(DailyRollup.objects.filter(workspace=amsterdam).values(*queries.FIELDS, "day"))
    assert sorted(again, key=lambda r: r["day"]) == sorted(sums, key=lambda r: r["day"])
