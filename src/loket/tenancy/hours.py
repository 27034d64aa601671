"""A workspace's business hours and holidays, in its own time zone.

``Workspace.business_hours`` maps weekday keys (``mon`` … ``sun``) to lists of ``["HH:MM",
"HH:MM"]`` ranges (an end of ``24:00`` means midnight); a weekday that is missing or empty is
closed. An empty mapping means always open (the default: a team that never set hours is never
"away"). ``Workspace.holidays`` lists ``YYYY-MM-DD`` dates that are closed all day. Used by the
live-chat widget (online/away) and, later, by SLA clocks and rules.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo

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


def is_open(workspace, at: dt.datetime | None = None) -> bool:
    """Whether the workspace is within its business hours at ``at`` (now by default)."""
    schedule = workspace.business_hours or {}
    if not schedule:
        return True
    try:
        zone = zoneinfo.ZoneInfo(workspace.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    local = (at or timezone.now()).astimezone(zone)
    if local.date().isoformat() in (workspace.holidays or []):
        return False
    minute = local.hour * 60 + local.minute
    for start, end in schedule.get(WEEKDAYS[local.weekday()]) or []:
        if _minutes(start) <= minute < _minutes(end):
            return True
    return False
