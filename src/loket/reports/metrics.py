"""What the reports count, defined once: a conversation's timeline in, its facts out.

The timeline is the conversation's messages in order (``Entry``: who wrote what, and the status
changes the activity lines record). ``facts`` replays it and returns every figure the reports
add up — the same definitions the report pages show next to each number (docs/reports.md):

* **Created**: the conversation's first entry.
* **Response**: an outbound message written by a member (a person). Bots, automatic replies,
  rules, notes and activity lines are never responses.
* **Wait**: from the customer's oldest unanswered message to the next response. Neither pending
  nor snoozed stops it (the customer is waiting all the same); a resolution ends it without a
  sample (nothing was answered).
* **First response time**: the wait the conversation's first response ends. Only for
  conversations the customer started.
* **Next response time**: every later wait — one sample each.
* **Resolution**: the status becoming resolved (or closed straight from an open state). Each
  resolution is a sample: the first from the conversation's start, a later one from the
  reopening before it.
* **Resolution time**: from that start to the resolution, without the time spent *pending*
  (waiting for the customer, who holds the clock then). Snoozed time counts: the snooze is the
  team's choice, the customer still waits.
* **Reopened**: a resolved conversation becoming active again (the customer writing, or a
  member reopening it). A customer's answer to the satisfaction survey reopens it only for a
  moment (loket.reports.csat resolves it again, ``via: csat``): no reopening, no resolution.
* **Replies per resolution**: responses between the resolution's start and the resolution.
* **Bot-resolved**: a resolution with no response in its stretch and at least one bot message.
* **Handoff**: a stretch in which a bot wrote and then a member responded.

Each duration is given in calendar seconds and in business seconds: only the time inside the
workspace's business hours (``loket.tenancy.hours.Schedule``: its week, holidays and time zone),
so a message at 17:55 on Friday answered at 09:05 on Monday took 10 business minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from loket.inbox.models import Message
from loket.tenancy.hours import Schedule

CUSTOMER = "customer"  # an inbound message from the contact
RESPONSE = "response"  # an outbound message a member wrote
BOT = "bot"  # a message the flow bot sent
AUTOMATIC = "automatic"  # an auto-reply, a rule's or the system's message: never a response
STATUS = "status"  # a status change (``status``: the new one)

_ACTIVE = ("open", "pending", "snoozed")
_DONE = ("resolved", "closed")


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str  # CUSTOMER, RESPONSE, BOT, AUTOMATIC or STATUS
    member_id: int | None = None  # the member who responded (RESPONSE)
    status: str = ""  # the new status (STATUS)
    survey_answered: bool = False  # STATUS: resolved again by a survey answer


@dataclass(frozen=True)
class Duration:
    """A measured wait: when it ended (the day it counts on), calendar and business seconds."""

    ended_at: dt.datetime
    seconds: float
    business_seconds: float
    member_id: int | None = None  # who ended it (a response), when a member did


@dataclass(frozen=True)
class Resolution:
    at: dt.datetime
    seconds: float  # from the stretch's start, pending time left out
    business_seconds: float
    responses: int  # member responses in the stretch
    by_bot: bool  # resolved with no member response and a bot message in the stretch
    handoff: bool  # a bot wrote, then a member responded, in the stretch
    reopened_from: dt.datetime | None  # the reopening that began the stretch (None: the first)


@dataclass
class Facts:
    created_at: dt.datetime | None = None
    first_response: Duration | None = None
    next_responses: list[Duration] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    reopened_at: list[dt.datetime] = field(default_factory=list)
    responses: int = 0  # member responses in all
    customer_messages: int = 0
    bot_messages: int = 0
    first_responder_id: int | None = None


def _measure(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> tuple[float, float]:
    if end <= start:
        return 0.0, 0.0
    return (end - start).total_seconds(), schedule.minutes_between(start, end) * 60


@dataclass
class _Stretch:
    """From the conversation's start, or a reopening, to the next resolution."""

    started_at: dt.datetime
    reopened_from: dt.datetime | None
    paused_seconds: float = 0.0
    paused_business_seconds: float = 0.0
    paused_since: dt.datetime | None = None  # pending since
    responses: int = 0
    bot_messages: int = 0
    handoff: bool = False

    def pause(self, at: dt.datetime) -> None:
        if self.paused_since is None:
            self.paused_since = at

    def resume(self, at: dt.datetime, schedule: Schedule) -> None:
        if self.paused_since is not None:
            seconds, business = _measure(schedule, self.paused_since, at)
            self.paused_seconds += seconds
            self.paused_business_seconds += business
            self.paused_since = None


def facts(entries: Iterable[Entry], schedule: Schedule) -> Facts:
    """Replay the timeline (entries in time order) under the workspace's business hours."""
    found = Facts()
    status = "open"
    stretch: _Stretch | None = None
    waiting_since: dt.datetime | None = None  # the customer's unanswered message
    answered_once = False
    started_by_customer: bool | None = None

    def resolve(at: dt.datetime) -> None:
        nonlocal stretch, waiting_since
        waiting_since = None
        if stretch is None:
            return
        stretch.resume(at, schedule)
        seconds, business = _measure(schedule, stretch.started_at, at)
        found.resolutions.append(
            Resolution(
                at=at,
                seconds=max(0.0, seconds - stretch.paused_seconds),
                business_seconds=max(0.0, business - stretch.paused_business_seconds),
                responses=stretch.responses,
                by_bot=stretch.responses == 0 and stretch.bot_messages > 0,
                handoff=stretch.handoff,
                reopened_from=stretch.reopened_from,
            )
        )
        stretch = None

    def reopen(at: dt.datetime) -> None:
        nonlocal stretch
        found.reopened_at.append(at)
        stretch = _Stretch(started_at=at, reopened_from=at)

    for entry in entries:
        if found.created_at is None:
            found.created_at = entry.at
            stretch = _Stretch(started_at=entry.at, reopened_from=None)
        if entry.kind == STATUS:
            new = entry.status
            if new == status:
                continue
            if (
                entry.survey_answered
                and new in _DONE
                and stretch is not None
                and stretch.reopened_from is not None
                and found.reopened_at
                and found.reopened_at[-1] == stretch.reopened_from
            ):
                # The survey answer's moment of reopening: as if it had stayed resolved.
                found.reopened_at.pop()
                stretch, waiting_since, status = None, None, new
                continue
            if new in _DONE and status in _ACTIVE:
                resolve(entry.at)
            elif new in _ACTIVE and status in _DONE:
                reopen(entry.at)
            if stretch is not None:
                if new == "pending":
                    stretch.pause(entry.at)
                elif status == "pending":
                    stretch.resume(entry.at, schedule)
            status = new
            continue
        if entry.kind == CUSTOMER:
            found.customer_messages += 1
            if started_by_customer is None:
                started_by_customer = True
            if status in _DONE:
                reopen(entry.at)  # the customer's message reopens it (the ingest path does)
                status = "open"
            elif status in ("pending", "snoozed"):
                if status == "pending" and stretch is not None:
                    stretch.resume(entry.at, schedule)
                status = "open"  # a customer's message wakes it
            if waiting_since is None:
                waiting_since = entry.at
            continue
        if started_by_customer is None:
            started_by_customer = False
        if entry.kind == BOT:
            found.bot_messages += 1
            if stretch is not None:
                stretch.bot_messages += 1
            continue
        if entry.kind != RESPONSE:
            continue  # AUTOMATIC: neither a response nor the customer's
        found.responses += 1
        if stretch is not None:
            stretch.responses += 1
            if stretch.bot_messages and not stretch.handoff:
                stretch.handoff = True
        if waiting_since is not None:
            seconds, business = _measure(schedule, waiting_since, entry.at)
            wait = Duration(entry.at, seconds, business, entry.member_id)
            if not answered_once and started_by_customer:
                found.first_response = wait
                found.first_responder_id = entry.member_id
            else:
                found.next_responses.append(wait)
            waiting_since = None
        answered_once = True
    return found


def entry_of(
    direction: str, kind: str, author_type: str, author_member_id, data, at
) -> Entry | None:
    """A stored message (``inbox.Message``'s fields) as the timeline sees it; None: not part of
    it (notes, other activity lines)."""
    data = data or {}
    if kind == "activity":
        if data.get("action") == "status_changed" and data.get("status"):
            return Entry(
                at, STATUS, status=str(data["status"]), survey_answered=data.get("via") == "csat"
            )
        return None
    if kind != "message":
        return None
    if direction == "in":
        return Entry(at, CUSTOMER) if author_type == "contact" else None
    if author_type == "bot":
        return Entry(at, BOT)
    if author_type == "member" and author_member_id and not data.get("rule_id"):
        return Entry(at, RESPONSE, member_id=author_member_id)
    return Entry(at, AUTOMATIC)


def conversation_facts(conversation) -> Facts:
    """The facts of one stored conversation, under its workspace's (or channel's) hours."""
    rows = (
        Message.objects.filter(
            workspace_id=conversation.workspace_id, conversation_id=conversation.pk
        )
        .order_by("created_at", "pk")
        .values_list("direction", "kind", "author_type", "author_member_id", "data", "created_at")
    )
    entries = (entry_of(*row) for row in rows.iterator(chunk_size=500))
    schedule = Schedule.of(conversation.workspace, conversation.channel)
    return facts((e for e in entries if e is not None), schedule)
