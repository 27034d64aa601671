"""Keeping the reports' tables current, in the background (the ``roll_up_reports`` job).

A sweep reads the messages stored since its last run (``SweepMark`` "reports", in id order, only
settled ones: see loket.knowledge.sweeps) — every change a report can see is a message: customer
messages, replies, bot messages and the activity lines of status, assignment and team changes.
For each conversation they belong to it makes the conversation's facts anew from its whole
timeline (``loket.reports.metrics``), so a late or out-of-order message corrects them, and then
sums again the days whose facts changed (old and new days both). Nothing runs in the ingest's
transaction. A customer's rating (CSAT) is a fact too; giving or changing one writes an activity
line, so the sweep sees it like any other change.

Days and hours are the workspace's local ones (its time zone). Changing the time zone, or
anything that touches old conversations without a message (deleting one), is caught up by
``rebuild(workspace)``.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from loket.inbox.models import Conversation, Message, SatisfactionRating
from loket.knowledge.models import SweepMark
from loket.reports import metrics
from loket.reports.models import (
    DailyChannelMemberRollup,
    DailyRollup,
    FactKind,
    HourlyVolume,
    ReportFact,
)
from loket.tenancy.hours import _zone

SWEEP = "reports"
BATCH = 500  # messages a sweep reads at a time
CHUNK = 50  # conversations made anew in one transaction


def _fact(conversation, zone, kind, at, *, member_id=None, **values) -> ReportFact:
    local = at.astimezone(zone)
    return ReportFact(
        workspace_id=conversation.workspace_id,
        conversation_id=conversation.pk,
        kind=kind,
        at=at,
        day=local.date(),
        hour=local.hour,
        channel_id=conversation.channel_id,
        team_id=conversation.team_id,
        member_id=member_id if member_id is not None else conversation.assignee_id,
        priority=conversation.priority,
        **values,
    )


_UNSET = object()


def facts_of(conversation: Conversation, rating=_UNSET) -> list[ReportFact]:
    """The conversation's report facts (not saved); ``rating``: its SatisfactionRating or None
    when the caller has read it already."""
    found = metrics.conversation_facts(conversation)
    if found.created_at is None:
        return []
    zone = _zone(conversation.workspace.time_zone)
    rows = [_fact(conversation, zone, FactKind.CREATED, found.created_at)]
    for kind, waits in (
        (FactKind.FIRST_RESPONSE, [found.first_response] if found.first_response else []),
        (FactKind.NEXT_RESPONSE, found.next_responses),
    ):
        rows += [
            _fact(
                conversation,
                zone,
                kind,
                wait.ended_at,
                member_id=wait.member_id,
                seconds=wait.seconds,
                business_seconds=wait.business_seconds,
            )
            for wait in waits
        ]
    rows += [
        _fact(
            conversation,
            zone,
            FactKind.RESOLVED,
            resolution.at,
            seconds=resolution.seconds,
            business_seconds=resolution.business_seconds,
            responses=resolution.responses,
            by_bot=resolution.by_bot,
            handoff=resolution.handoff,
        )
        for resolution in found.resolutions
    ]
    rows += [_fact(conversation, zone, FactKind.REOPENED, at) for at in found.reopened_at]
    if rating is _UNSET:
        rating = SatisfactionRating.objects.filter(conversation_id=conversation.pk).first()
    if rating is not None:
        rows.append(
            _fact(conversation, zone, FactKind.CSAT, rating.updated_at, rating=rating.rating)
        )
    return rows


def remake(conversation_ids: Iterable[int]) -> set[tuple[int, dt.date]]:
    """Make these conversations' facts anew; the (workspace, day)s whose facts changed."""
    ids = sorted(set(conversation_ids))
    touched: set[tuple[int, dt.date]] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic():
            # Locked: two sweeps (or a sweep and a status change) never interleave here.
            conversations = list(
                Conversation.objects.select_for_update(of=("self",))
                .filter(pk__in=chunk)
                .select_related("workspace")
                .order_by("pk")
            )
            old = ReportFact.objects.filter(conversation_id__in=chunk)
            touched.update(old.values_list("workspace_id", "day").distinct())
            old.delete()
            ratings = {
                r.conversation_id: r
                for r in SatisfactionRating.objects.filter(conversation_id__in=chunk)
            }
            made = [row for c in conversations for row in facts_of(c, ratings.get(c.pk))]
            ReportFact.objects.bulk_create(made, batch_size=1000)
            touched.update((row.workspace_id, row.day) for row in made)
    return touched


_SUMS = {
    "created": Count("pk", filter=Q(kind=FactKind.CREATED)),
    "resolved": Count("pk", filter=Q(kind=FactKind.RESOLVED)),
    "reopened": Count("pk", filter=Q(kind=FactKind.REOPENED)),
    "bot_resolved": Count("pk", filter=Q(kind=FactKind.RESOLVED, by_bot=True)),
    "handoffs": Count("pk", filter=Q(kind=FactKind.RESOLVED, handoff=True)),
    "resolution_responses": Sum("responses", filter=Q(kind=FactKind.RESOLVED), default=0),
    "resolution_seconds": Sum("seconds", filter=Q(kind=FactKind.RESOLVED), default=0.0),
    "resolution_business_seconds": Sum(
        "business_seconds", filter=Q(kind=FactKind.RESOLVED), default=0.0
    ),
    "first_responses": Count("pk", filter=Q(kind=FactKind.FIRST_RESPONSE)),
    "first_response_seconds": Sum("seconds", filter=Q(kind=FactKind.FIRST_RESPONSE), default=0.0),
    "first_response_business_seconds": Sum(
        "business_seconds", filter=Q(kind=FactKind.FIRST_RESPONSE), default=0.0
    ),
    "next_responses": Count("pk", filter=Q(kind=FactKind.NEXT_RESPONSE)),
    "next_response_seconds": Sum("seconds", filter=Q(kind=FactKind.NEXT_RESPONSE), default=0.0),
    "next_response_business_seconds": Sum(
        "business_seconds", filter=Q(kind=FactKind.NEXT_RESPONSE), default=0.0
    ),
    "ratings": Count("pk", filter=Q(kind=FactKind.CSAT)),
    "rating_sum": Sum("rating", filter=Q(kind=FactKind.CSAT), default=0),
    "ratings_satisfied": Count("pk", filter=Q(kind=FactKind.CSAT, rating__gte=4)),
}
_DIMENSIONS = ("channel_id", "team_id", "member_id", "priority")
FACT_SUMS = _SUMS  # what a report sums from facts (the label report reads them directly)


def per_channel_and_member(rows: Iterable[dict]) -> dict[tuple, dict]:
    """Detailed rollup rows (dicts with the dimensions and the sums) summed again per
    (channel_id, member_id): the rows of ``DailyChannelMemberRollup``."""
    found: dict[tuple, dict] = {}
    for row in rows:
        sums = found.setdefault((row["channel_id"], row["member_id"]), dict.fromkeys(_SUMS, 0))
        for name in _SUMS:
            sums[name] += row[name] or 0
    return found


def roll(days: Iterable[tuple[int, dt.date]]) -> None:
    """Sum these (workspace, day)s again from their facts: ``DailyRollup``, the same per channel
    and member (``DailyChannelMemberRollup``) and ``HourlyVolume``."""
    for workspace_id, day in sorted(set(days)):
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # One roller per day at a time (SQLite's writer lock does this there).
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)",
                        [zlib.crc32(b"reports") >> 1, workspace_id * 100_000 + day.toordinal()],
                    )
            facts = ReportFact.objects.filter(workspace_id=workspace_id, day=day)
            DailyRollup.objects.filter(workspace_id=workspace_id, day=day).delete()
            DailyChannelMemberRollup.objects.filter(workspace_id=workspace_id, day=day).delete()
            HourlyVolume.objects.filter(workspace_id=workspace_id, day=day).delete()
            detailed = list(facts.values(*_DIMENSIONS).annotate(**_SUMS).order_by())
            DailyRollup.objects.bulk_create(
                DailyRollup(workspace_id=workspace_id, day=day, **row) for row in detailed
            )
            DailyChannelMemberRollup.objects.bulk_create(
                DailyChannelMemberRollup(
                    workspace_id=workspace_id, day=day, channel_id=channel, member_id=member, **sums
                )
                for (channel, member), sums in per_channel_and_member(detailed).items()
            )
            HourlyVolume.objects.bulk_create(
                HourlyVolume(workspace_id=workspace_id, day=day, **row)
                for row in facts.filter(kind__in=(FactKind.CREATED, FactKind.REOPENED))
                .values("hour", "channel_id", "team_id")
                .annotate(conversations=Count("pk"))
                .order_by()
            )


def sweep(limit: int = BATCH) -> int:
    """One batch of messages: their conversations' facts made anew and their days summed;
    returns how many messages it read."""
    mark, _created = SweepMark.objects.get_or_create(name=SWEEP)
    before = timezone.now() - dt.timedelta(seconds=settings.LOKET_SWEEP_SETTLE_SECONDS)
    rows = list(
        Message.objects.filter(pk__gt=mark.last_id, created_at__lte=before)
        .order_by("pk")
        .values_list("pk", "conversation_id")[:limit]
    )
    if not rows:
        return 0
    roll(remake(conversation for _pk, conversation in rows))
    SweepMark.objects.filter(pk=mark.pk).update(last_id=rows[-1][0], updated_at=timezone.now())
    return len(rows)


def catch_up(limit: int = BATCH, *, batches: int = 200) -> int:
    """Batches until every settled message so far is read (the periodic job)."""
    read = 0
    for _ in range(batches):
        done = sweep(limit)
        read += done
        if done < limit:
            break
    return read


def rebuild(workspace_id: int) -> int:
    """Every fact and sum of the workspace made anew (after a time-zone change, say)."""
    ids = list(Conversation.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))
    touched = remake(ids)
    touched |= set(
        DailyRollup.objects.filter(workspace_id=workspace_id).values_list("workspace_id", "day")
    )
    roll(touched)
    return len(ids)
