"""A supervisor reads the reports of four busy weeks: the overview's chart is drawn, the
agents, busiest-hours, channels, teams and labels pages show the numbers the rollups hold, and
each page is saved as a screenshot (``var/screenshots/reports-*.png``) for people to look at.

The weeks are built as they happen: customers' messages through the ingest service, replies and
bot messages through the outbound service, status changes through the conversation service, then
moved to their times and summed by the real rollup code (``loket.reports.rollups``)."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import expect

from loket.connectors.registry import get_connector
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Label,
    Message,
    SatisfactionRating,
)
from loket.inbox.services.channels import create_channel
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.outbound import reply
from loket.inbox.services.satisfaction import rate
from loket.reports import queries, rollups
from loket.tenancy.models import Role, Workspace
from loket.tenancy.services import create_team
from tests import factories
from tests.browser.test_accessibility import violations

AMS = ZoneInfo("Europe/Amsterdam")
DAYS = 28
WEEKDAY_HOURS = [["08:30", "17:30"]]
QUESTIONS = [
    "Waar is mijn bestelling?",
    "Can I still change my delivery address?",
    "The parcel arrived damaged",
    "Ik wil mijn bestelling retourneren",
    "Do you ship to Belgium?",
    "My invoice shows the wrong VAT number",
]


def _busy_weeks(app) -> dict:
    """Four weeks up to yesterday (Amsterdam): about 200 conversations on three channels and
    two teams, with labels, a bot on the webshop, resolutions, reopenings and ratings."""
    workspace = app.workspace
    Workspace.objects.filter(pk=workspace.pk).update(
        time_zone="Europe/Amsterdam",
        business_hours={d: WEEKDAY_HOURS for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    workspace.refresh_from_db()
    anna, bram = app.person("agent-a").membership, app.person("agent-b").membership
    olga = app.owner.membership
    returns = create_team(workspace, "Returns", [bram])
    channels = {
        "Webshop": app.channel,
        "Returns desk": create_channel(
            workspace,
            get_connector("api"),
            name="Returns desk",
            config={"outbound_url": app.outbound.url},
            default_team=returns,
        )[0],
        "Wholesale": create_channel(
            workspace,
            get_connector("api"),
            name="Wholesale",
            config={"outbound_url": app.outbound.url},
        )[0],
    }
    labels = {
        name: Label.objects.create(workspace=workspace, name=name, color=color)
        for name, color in (
            ("Delivery", "#1f5fd1"),
            ("Billing", "#b54708"),
            ("Damaged", "#b42318"),
            ("VIP", "#067647"),
        )
    }
    rng = random.Random(10)
    today = timezone.now().astimezone(AMS).date()
    made = 0
    for back in range(DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        weekend = day.weekday() >= 5
        for n in range(rng.randint(2, 4) if weekend else rng.randint(6, 10)):
            hour = rng.choice([8, 9, 9, 10, 10, 11, 11, 13, 14, 14, 15, 16, 19, 21])
            start = dt.datetime.combine(day, dt.time(hour, rng.randint(0, 59)), tzinfo=AMS)
            name = rng.choices(list(channels), weights=[6, 3, 2])[0]
            _conversation(
                rng,
                channels[name],
                start,
                contact=f"{day.isoformat()}-{n}",
                agents=[anna, bram] if name != "Wholesale" else [olga, anna],
                bot=name == "Webshop" and rng.random() < 0.3,
                labels=rng.sample(list(labels.values()), k=rng.choice([0, 1, 1, 1, 2])),
            )
            made += 1
    rollups.rebuild(workspace.pk)
    return {"channels": channels, "labels": labels, "made": made, "returns": returns}


def _moved(conversation, when: dt.datetime, seen: set[int]) -> set[int]:
    """Move the conversation's activity lines not in ``seen`` to ``when``; all their ids."""
    lines = Message.objects.filter(conversation=conversation, kind="activity")
    lines.exclude(pk__in=seen).update(created_at=when)
    return set(lines.values_list("pk", flat=True))


def _conversation(rng, channel, start, *, contact, agents, bot, labels):
    """A customer's question at ``start``; maybe the bot, then an agent's replies (with the
    customer's follow-ups between them); mostly resolved, sometimes reopened by the customer
    and resolved again, sometimes rated."""

    def customer(text):
        received = factories.inbound(channel, text, contact_id=contact, name=contact)
        return received.conversation_id, received.message_id

    conversation_id, first = customer(rng.choice(QUESTIONS))
    conversation = Conversation.objects.get(pk=conversation_id)
    agent = rng.choice(agents)
    when = start
    moves = [(first, start)]  # (message id, time)
    if bot:
        when += dt.timedelta(seconds=rng.randint(2, 20))
        sent = reply(
            conversation, author=None, author_type=AuthorType.BOT, text="Ik zoek het voor je op."
        )
        moves.append((sent.pk, when))
    if not (bot and rng.random() < 0.5):  # else the bot's answer was enough
        for turn in range(rng.choice([1, 1, 2, 3])):
            if turn:
                when += dt.timedelta(minutes=rng.choice([2, 5, 20, 60]))
                moves.append((customer("En wanneer komt het dan?")[1], when))
            when += dt.timedelta(minutes=rng.choice([3, 8, 15, 25, 40, 90, 240]))
            sent = reply(conversation, author=agent, text="Dank je, ik kijk het na.")
            moves.append((sent.pk, when))
    for pk, at in moves:
        Message.objects.filter(pk=pk).update(created_at=at)
    if labels:
        conversation.labels.set(labels)
    if rng.random() < 0.2:
        return  # still open
    resolved_at = when + dt.timedelta(minutes=rng.choice([10, 30, 60, 180, 600]))
    update_conversation(conversation, actor=agent, assignee=agent)
    update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
    seen = _moved(conversation, resolved_at, set())
    if rng.random() < 0.15:  # the customer comes back
        back = resolved_at + dt.timedelta(hours=rng.choice([2, 5, 20]))
        again, message = customer("Het is nog steeds niet aangekomen")
        if again == conversation.pk:
            Message.objects.filter(pk=message).update(created_at=back)
            seen = _moved(conversation, back, seen)
            sent = reply(conversation, author=agent, text="Excuses, ik stuur een nieuwe.")
            Message.objects.filter(pk=sent.pk).update(created_at=back + dt.timedelta(minutes=35))
            conversation.refresh_from_db()
            update_conversation(conversation, actor=agent, status=ConversationStatus.RESOLVED)
            resolved_at = back + dt.timedelta(hours=1)
            _moved(conversation, resolved_at, seen)
    if rng.random() < 0.45:
        conversation.refresh_from_db()
        rate(conversation, rng.choice([5, 5, 4, 4, 3, 2]), rng.choice(["", "Snel geholpen!"]))
        SatisfactionRating.objects.filter(conversation=conversation).update(
            updated_at=resolved_at + dt.timedelta(minutes=20)
        )


def _table_cell(page, row: str, figure: str):
    return (
        page.locator("#breakdown tbody tr")
        .filter(has=page.get_by_role("rowheader", name=row, exact=True))
        .locator(f'td[data-figure="{figure}"]')
    )


def test_a_supervisor_reads_the_reports(agent_app, browser_pages, screenshot):
    built = _busy_weeks(agent_app)
    agent_app.add_person("sue", "sue@acme.example", "Sue Supervisor", Role.SUPERVISOR)
    # Tall enough for the longest page, so the full-page pictures keep the left rail.
    [sue] = browser_pages("sue")
    sue.set_viewport_size({"width": 1440, "height": 1100})
    workspace_id = agent_app.workspace.pk
    yesterday = timezone.now().astimezone(AMS).date() - dt.timedelta(days=1)
    start, end = yesterday - dt.timedelta(days=DAYS - 1), yesterday
    totals = queries.totals(workspace_id, start, end)
    assert totals["created"] == built["made"]
    assert totals["reopened"] and totals["next_responses"] and totals["bot_resolved_share"]

    sue.goto(agent_app.url(f"/w/acme/reports/?from={start}&to={end}"))
    expect(sue.locator('[data-figure="created"] .value')).to_have_text(str(built["made"]))
    expect(sue.locator("#trend-chart canvas")).to_be_visible()
    expect(sue.locator("#trend-chart .u-legend")).to_contain_text("New conversations")
    screenshot(sue, "reports-overview", full_page=True)

    sue.get_by_role("link", name="Agents", exact=True).click()
    expect(sue.locator("#agents-table")).to_contain_text("Anna Agent")
    expect(sue.locator("#agents-table")).to_contain_text("Bram Agent")
    screenshot(sue, "reports-agents", full_page=True)

    sue.get_by_role("link", name="Busiest hours").click()
    expect(sue.locator("#heatmap")).to_be_visible()
    came_in = totals["created"] + totals["reopened"]
    expect(sue.get_by_text(f"{came_in} conversations came in")).to_be_visible()
    screenshot(sue, "reports-busiest-hours", full_page=True)

    per_channel = queries.by_dimension(workspace_id, start, end, "channel_id")
    sue.get_by_role("link", name="Channels", exact=True).click()
    expect(sue.locator("#breakdown-chart canvas")).to_be_visible()
    for name, channel in built["channels"].items():
        expect(_table_cell(sue, name, "created")).to_have_text(
            str(per_channel[channel.pk]["created"])
        )
    screenshot(sue, "reports-channels", full_page=True)
    assert violations(sue) == []  # axe-core: WCAG A/AA, serious or critical

    per_team = queries.by_dimension(workspace_id, start, end, "team_id")
    sue.get_by_role("link", name="Teams", exact=True).click()
    expect(sue.locator("#breakdown-chart canvas")).to_be_visible()
    expect(_table_cell(sue, "Returns", "resolved")).to_have_text(
        str(per_team[built["returns"].pk]["resolved"])
    )
    expect(_table_cell(sue, "No team", "created")).to_have_text(str(per_team[None]["created"]))
    screenshot(sue, "reports-teams", full_page=True)
    assert violations(sue) == []  # axe-core: WCAG A/AA, serious or critical

    per_label = queries.by_label(workspace_id, start, end)
    sue.get_by_role("link", name="Labels", exact=True).click()
    expect(sue.locator("#breakdown-chart canvas")).to_be_visible()
    for name, label in built["labels"].items():
        expect(_table_cell(sue, name, "created")).to_have_text(str(per_label[label.pk]["created"]))
    expect(sue.get_by_text("a conversation with two labels counts in both rows")).to_be_visible()
    screenshot(sue, "reports-labels", full_page=True)
    assert violations(sue) == []  # axe-core: WCAG A/AA, serious or critical

    # A number opens the conversations behind it.
    delivery = per_label[built["labels"]["Delivery"].pk]["created"]
    _table_cell(sue, "Delivery", "created").get_by_role("link").click()
    expect(sue.get_by_text(f"{delivery} conversations behind this number.")).to_be_visible()
    expect(sue.get_by_role("heading", level=1)).to_contain_text("Delivery")
