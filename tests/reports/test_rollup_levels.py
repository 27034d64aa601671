"""The two levels of daily rollups (loket.reports.rollups): ``DailyRollup`` per channel, team,
member and priority, and ``DailyChannelMemberRollup``, the same summed per channel and member
only, which the reports read unless a team or priority filter (or grouping) needs the detail.
Both give the same figures; the migration that added the second fills it from the first."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db.models import Sum

from loket.reports import queries, rollups
from loket.reports.models import DailyChannelMemberRollup, DailyRollup, ReportFact
from loket.reports.queries import Filters
from loket.tenancy.services import create_team
from tests import factories

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 10)
NEXT = dt.date(2026, 11, 11)


@pytest.fixture
def setup(workspace, owner):
    """Facts of two conversations on two channels, two teams, two members and two priorities,
    over two days, rolled up."""
    email = factories.api_channel(workspace, name="Email")
    chat = factories.api_channel(workspace, name="Chat")
    agent = factories.agent(workspace, "agent@acme.example")
    sales = create_team(workspace, "Sales")
    support = create_team(workspace, "Support")
    first = factories.inbound(email, "Hi").conversation_id
    second = factories.inbound(chat, "Hello", contact_id="c-2").conversation_id
    at = dt.datetime(2026, 11, 10, 9, tzinfo=dt.UTC)

    def fact(conversation, kind, day, channel, team, member, priority, **values):
        return ReportFact(
            workspace=workspace,
            conversation_id=conversation,
            kind=kind,
            at=at,
            day=day,
            hour=9,
            channel_id=channel.pk,
            team_id=team.pk if team else None,
            member_id=member.pk if member else None,
            priority=priority,
            **values,
        )

    ReportFact.objects.bulk_create(
        [
            fact(first, "created", DAY, email, sales, owner, 0),
            fact(
                first,
                "first_response",
                DAY,
                email,
                sales,
                owner,
                0,
                seconds=60.0,
                business_seconds=30.0,
            ),
            fact(
                first,
                "resolved",
                DAY,
                email,
                support,
                owner,
                3,
                seconds=600.0,
                business_seconds=300.0,
                responses=2,
            ),
            fact(first, "csat", NEXT, email, support, owner, 3, rating=5),
            fact(second, "created", DAY, chat, None, agent, 2),
            fact(
                second,
                "first_response",
                DAY,
                chat,
                support,
                agent,
                2,
                seconds=120.0,
                business_seconds=120.0,
            ),
            fact(
                second,
                "next_response",
                NEXT,
                chat,
                support,
                None,
                2,
                seconds=30.0,
                business_seconds=0.0,
            ),
            fact(
                second,
                "resolved",
                NEXT,
                chat,
                sales,
                agent,
                0,
                seconds=900.0,
                business_seconds=900.0,
                responses=1,
                by_bot=False,
                handoff=True,
            ),
        ]
    )
    rollups.roll({(workspace.pk, DAY), (workspace.pk, NEXT)})
    return {"email": email, "chat": chat, "agent": agent, "sales": sales, "support": support}


def _sums(model, **filters) -> dict:
    found = model.objects.filter(**filters).aggregate(**{f"{f}_": Sum(f) for f in queries.FIELDS})
    return {f: found[f"{f}_"] or 0 for f in queries.FIELDS}


def test_the_channel_and_member_rows_are_the_detailed_rows_summed(workspace, setup):
    detailed = DailyRollup.objects.filter(workspace=workspace)
    coarse = DailyChannelMemberRollup.objects.filter(workspace=workspace)
    assert detailed.count() == 7 and coarse.count() == 5
    for row in coarse.values():
        same = {
            "workspace_id": row["workspace_id"],
            "day": row["day"],
            "channel_id": row["channel_id"],
            "member_id": row["member_id"],
        }
        assert {f: row[f] for f in queries.FIELDS} == _sums(DailyRollup, **same)
    assert _sums(DailyChannelMemberRollup) == _sums(DailyRollup)
    # Rolled again (a late message): replaced, not added to.
    rollups.roll({(workspace.pk, DAY)})
    assert coarse.count() == 5 and _sums(DailyChannelMemberRollup) == _sums(DailyRollup)


def test_every_filter_gives_the_detailed_figures(workspace, setup):
    both = (DAY, NEXT)
    ws = workspace.pk
    email, chat, agent = setup["email"], setup["chat"], setup["agent"]
    sales, support = setup["sales"], setup["support"]
    for filters, detailed in (
        (Filters(), {}),
        (Filters(channel_id=chat.pk), {"channel_id": chat.pk}),
        (Filters(member_id=agent.pk), {"member_id": agent.pk}),
        (Filters(channel_id=email.pk, member_id=agent.pk), {"channel_id": email.pk,
                                                            "member_id": agent.pk}),
        (Filters(team_id=sales.pk), {"team_id": sales.pk}),
        (Filters(priority=2), {"priority": 2}),
        (Filters(channel_id=chat.pk, team_id=support.pk), {"channel_id": chat.pk,
                                                           "team_id": support.pk}),
    ):  # fmt: skip
        want = queries.derived(_sums(DailyRollup, workspace=workspace, **detailed))
        assert queries.totals(ws, *both, filters) == want, filters
    assert queries.totals(ws, *both)["created"] == 2
    assert queries.totals(ws, *both, Filters(team_id=sales.pk))["created"] == 1
    assert queries.totals(ws, *both, Filters(team_id=sales.pk))["resolved"] == 1
    assert queries.totals(ws, *both, Filters(priority=3))["ratings"] == 1
    assert queries.totals(ws, *both, Filters(priority=0))["handoff_share"] == 1.0

    per_team = queries.by_dimension(ws, *both, "team_id")
    assert per_team[sales.pk]["resolved"] == 1 and per_team[support.pk]["resolved"] == 1
    assert per_team[None]["created"] == 1
    per_priority = queries.by_dimension(ws, *both, "priority")
    assert per_priority[2]["first_responses"] == 1 and per_priority[3]["csat_score"] == 1.0
    per_member = queries.by_dimension(ws, *both, "member_id", Filters(team_id=support.pk))
    assert per_member[agent.pk]["first_responses"] == 1 and per_member[None]["next_responses"]
    per_channel = queries.by_dimension(ws, *both, "channel_id")
    assert per_channel[chat.pk]["created"] == 1 and per_channel[email.pk]["ratings"] == 1
    days = dict(queries.series(ws, *both, Filters(channel_id=chat.pk)))
    assert days[DAY]["created"] == 1 and days[NEXT]["resolved"] == 1


def test_the_migration_fills_the_table_from_the_rollups_there(workspace, setup):
    before = list(
        DailyChannelMemberRollup.objects.order_by("day", "channel_id", "member_id").values(
            "workspace_id", "day", "channel_id", "member_id", *queries.FIELDS
        )
    )
    DailyChannelMemberRollup.objects.all().delete()
    migration = importlib.import_module("loket.reports.migrations.0005_channel_member_rollup")
    migration.fill(apps, None)
    after = list(
        DailyChannelMemberRollup.objects.order_by("day", "channel_id", "member_id").values(
            "workspace_id", "day", "channel_id", "member_id", *queries.FIELDS
        )
    )
    assert after == before and len(after) == 5
