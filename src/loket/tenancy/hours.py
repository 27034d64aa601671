"""A workspace's business hours and holidays, in its own time zone.

``Workspace.business_hours`` maps weekday keys (``mon`` … ``sun``) to lists of ``["HH:MM",
"HH:MM"]`` ranges (an end of ``24:00`` means midnight); a weekday that is missing or empty is
closed. An empty mapping means always open (the default: a team that never set hours is never
"away"). ``Workspace.holidays`` lists ``YYYY-MM-DD`` dates that are closed all day. A channel
may have hours of its own (``Channel.business_hours``: ``{"hours": {...}, "holidays": [...],
"time_zone": "..."}``, each key optional, missing ones taken from the workspace), e.g. a phone
line open shorter than email. A member may have working hours of their own
(``Membership.working_hours``, same shape, in the workspace's time zone and skipping its
holidays): the auto-assigner only gives them conversations inside those hours.

``Schedule`` answers "open at?", "when does it open next?", "what moment is N business minutes
after this one?" and "how many business minutes lie between these two?", in real elapsed time:
on a daylight-saving change day an open range from 00:00 to 24:00 lasts 23 or 25 hours. Used by
the live-chat widget (online/away), SLA clocks and rules.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils import timezone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_RANGES_PER_DAY = 4
MAX_HOLIDAYS = 366


class InvalidHours(ValueError):
    """Business hours or holidays that cannot be used; the message says what to fix."""


def _minutes(value: str) -> int:
    if not isinstance(value, str) or not _TIME.match(value):
        raise InvalidHours(f"{value!r} is not a time like 09:00")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def clean_schedule(value) -> dict[str, list[list[str]]]:
    """A validated copy of a schedule: ranges sorted, not overlapping, start before end."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict) or set(value) - set(WEEKDAYS):
        raise InvalidHours(f"business hours use the days {', '.join(WEEKDAYS)}")
    out: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        ranges = value.get(day) or []
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            raise InvalidHours(f"{day}: at most {MAX_RANGES_PER_DAY} ranges")
        spans = []
        for entry in ranges:
            if not isinstance(entry, list | tuple) or len(entry) != 2:
                raise InvalidHours(f"{day}: a range is [start, end]")
            start, end = _minutes(entry[0]), _minutes(entry[1])
            if start >= end:
                raise InvalidHours(f"{day}: {entry[0]} is not before {entry[1]}")
            spans.append((start, end, [entry[0], entry[1]]))
        spans.sort()
        for (_, first_end, first), (second_start, _, second) in itertools.pairwise(spans):
            if second_start < first_end:
                raise InvalidHours(f"{day}: {'-'.join(first)} overlaps {'-'.join(second)}")
        if spans:
            out[day] = [span[2] for span in spans]
    if not out:
        raise InvalidHours("business hours need at least one open day (or none at all: open)")
    return out


def clean_holidays(value) -> list[str]:
    if not value:
        return []
    if not isinstance(value, list) or len(value) > MAX_HOLIDAYS:
        raise InvalidHours(f"holidays are a list of at most {MAX_HOLIDAYS} dates")
    days = set()
    for item in value:
        try:
            days.add(dt.date.fromisoformat(str(item)).isoformat())
        except ValueError:
            raise InvalidHours(f"{item!r} is not a date like 2026-12-25") from None
    return sorted(days)


@functools.cache
def available_time_zones() -> frozenset[str]:
    # Scans the tz database on disk; it does not change while the process runs.
    return frozenset(zoneinfo.available_timezones())


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def clean_channel_hours(value) -> dict | None:
    """A channel's own hours (None: the workspace's), validated like the workspace's."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict) or set(value) - {"hours", "holidays", "time_zone"}:
        raise InvalidHours("channel hours take 'hours', 'holidays' and 'time_zone'")
    out: dict = {}
    if "hours" in value:
        out["hours"] = clean_schedule(value["hours"])
    if "holidays" in value:
        out["holidays"] = clean_holidays(value["holidays"])
    if value.get("time_zone"):
        zone = str(value["time_zone"])
        if zone not in available_time_zones():
            raise InvalidHours(f"{zone!r} is not a time zone like Europe/Amsterdam")
        out["time_zone"] = zone
    return out or None


# How far ahead the arithmetic looks for open time before giving up (a schedule whose every
# open day is a holiday would otherwise loop for ever).
_HORIZON_DAYS = 800


@dataclass(frozen=True)
class Schedule:
    zone: dt.tzinfo
    week: dict[str, tuple[tuple[int, int], ...]]  # weekday → (start, end) in minutes
    holidays: frozenset[dt.date]

    @classmethod
    def of(cls, workspace, channel=None) -> Schedule:
        own = (getattr(channel, "business_hours", None) or {}) if channel is not None else {}
        return cls._build(
            own.get("hours", workspace.business_hours or {}),
            own.get("holidays", workspace.holidays or []),
            own.get("time_zone") or workspace.time_zone,
        )

    @classmethod
    def of_member(cls, membership, workspace) -> Schedule:
        """A member's working hours (``Membership.working_hours``) in the workspace's time zone,
        closed on the workspace's holidays; always open when they have no hours of their own."""
        return cls._build(
            membership.working_hours or {}, workspace.holidays or [], workspace.time_zone
        )

    @classmethod
    def _build(cls, hours: dict, holidays: list, time_zone: str) -> Schedule:
        week = {
            # Sorted: open_ranges stops at the first range past its end.
            day: tuple(
                sorted((_minutes(start), _minutes(end)) for start, end in hours.get(day) or [])
            )
            for day in WEEKDAYS
        }
        return cls(
            _zone(time_zone),
            week if any(week.values()) else {},
            frozenset(map(dt.date.fromisoformat, holidays)),
        )

    @property
    def always_open(self) -> bool:
        return not self.week

    def _open_on(self, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The open ranges of one local date, as aware UTC datetimes."""
        if day in self.holidays:
            return
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
        for start, end in self.week.get(WEEKDAYS[day.weekday()], ()):
            # Wall-clock arithmetic (what the schedule means), then real time.
            opens = (midnight + dt.timedelta(minutes=start)).astimezone(dt.UTC)
            closes = (midnight + dt.timedelta(minutes=end)).astimezone(dt.UTC)
            if closes > opens:
                yield opens, closes

    def open_ranges(self, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open ranges from ``start`` on (the first clipped to it), in order."""
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
        for offset in range(_HORIZON_DAYS):
            for opens, closes in self._open_on(day + dt.timedelta(days=offset)):
                if closes > start:
                    yield max(opens, start), closes

    def is_open(self, at: dt.datetime | None = None) -> bool:
        at = at or timezone.now()
        if self.always_open:
            return True
        first = next(self.open_ranges(at), None)
        return first is not None and first[0] <= at

    def next_open(self, at: dt.datetime) -> dt.datetime | None:
        """``at`` itself when open, else when it opens next (None: never, within two years)."""
        if self.always_open:
            return at
        first = next(self.open_ranges(at), None)
        return first[0] if first else None

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime | None:
        """The moment ``minutes`` of business time after ``start`` (e.g. an SLA's due time)."""
        if self.always_open:
            return start + dt.timedelta(minutes=minutes)
        left = dt.timedelta(minutes=minutes)
        for opens, closes in self.open_ranges(start):
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
        return None

    def minutes_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business minutes from ``start`` to ``end`` (0 when end is not later)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds() / 60
        total = dt.timedelta()
        for opens, closes in self.open_ranges(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total.total_seconds() / 60


def is_open(workspace, at: dt.datetime | None = None, channel=None) -> bool:
    """Whether the workspace (or the channel, when it has hours of its own) is within its
    business hours at ``at`` (now by default)."""
    return Schedule.of(workspace, channel).is_open(at)
