"""Online time for the agents report: how long each member was *online* within a range of the
workspace's days, from their availability periods (``tenancy.AvailabilityPeriod``, recorded by
``loket.automation.assignment.set_availability``). A period still open counts up to now. Away
and offline are not online time. Periods are few (a member changes availability a few times a
day), so they are read for the range and clipped in Python."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.db.models import Q

from loket.automation import clock
from loket.tenancy.models import Availability, AvailabilityPeriod


def day_bounds(start: dt.date, end: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants the workspace's day ``start`` begins and the day after ``end`` begins."""
    begin = dt.datetime.combine(start, dt.time(), tzinfo=zone)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return begin, finish


def online_seconds(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    zone: ZoneInfo,
    member_ids: Iterable[int] | None = None,
) -> dict[int, float]:
    """Seconds each member was online on the days ``start`` to ``end`` (both included) of the
    workspace's time zone; members who were never online in them are absent."""
    begin, finish = day_bounds(start, end, zone)
    now = clock.now()
    finish = min(finish, now)
    if finish <= begin:
        return {}
    periods = AvailabilityPeriod.objects.filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=begin),
        workspace_id=workspace_id,
        availability=Availability.ONLINE,
        started_at__lt=finish,
    )
    if member_ids is not None:
        periods = periods.filter(membership_id__in=list(member_ids))
    totals: dict[int, float] = defaultdict(float)
    for member_id, started, ended in periods.values_list("membership_id", "started_at", "ended_at"):
        overlap = (min(ended or now, finish) - max(started, begin)).total_seconds()
        if overlap > 0:
            totals[member_id] += overlap
    return dict(totals)
