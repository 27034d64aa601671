"""A member's working hours as a form: one text field per weekday ("09:00-12:00, 13:00-17:30";
empty: not working that day; every day empty: no hours of their own), parsed here with errors
that say which day and which time is wrong. Used on Settings → Members (an admin edits anyone)
and on the member's own preferences page; ``assignment.set_working_hours`` stores the result."""

from __future__ import annotations

import itertools
import re

from django import forms
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loket.tenancy import hours
from loket.tenancy.models import Membership
from loket.web.workspace_settings.forms import WEEKDAY_LABELS

# "9:00" is read as "09:00"; "24:00" is the end of the day.
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
# Hyphen, en or em dash, or the word "to" between start and end.
_SEPARATOR = re.compile(r"\s*(?:-|\u2013|\u2014|\bto\b|\btot\b)\s*")


def _time(text: str) -> tuple[str, int]:
    found = _TIME.match(text)
    hour, minute = (int(found[1]), int(found[2])) if found else (-1, -1)
    if not (0 <= hour <= 23 and 0 <= minute <= 59) and (hour, minute) != (24, 0):
        raise forms.ValidationError(
            _("“%(time)s” is not a time from 00:00 to 24:00, like 09:00.") % {"time": text}
        )
    return f"{hour:02d}:{minute:02d}", hour * 60 + minute


def parse_ranges(text: str) -> list[list[str]]:
    """``"9:00-12:00, 13:00-17:30"`` → ``[["09:00", "12:00"], ["13:00", "17:30"]]``, sorted;
    a ValidationError naming the part that cannot be used."""
    spans = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text or ""))):
        pieces = _SEPARATOR.split(part)
        if len(pieces) != 2 or not all(pieces):
            raise forms.ValidationError(
                _("“%(range)s” is not a range like 09:00-17:30.") % {"range": part}
            )
        (start, start_minutes), (end, end_minutes) = _time(pieces[0]), _time(pieces[1])
        if start_minutes >= end_minutes:
            raise forms.ValidationError(
                _("%(start)s is not before %(end)s.") % {"start": start, "end": end}
            )
        spans.append((start_minutes, end_minutes, [start, end]))
    if len(spans) > hours.MAX_RANGES_PER_DAY:
        raise forms.ValidationError(
            _("At most %(count)s ranges a day.") % {"count": hours.MAX_RANGES_PER_DAY}
        )
    spans.sort()
    for first, second in itertools.pairwise(spans):
        if second[0] < first[1]:
            raise forms.ValidationError(
                _("%(first)s overlaps %(second)s.")
                % {"first": "-".join(first[2]), "second": "-".join(second[2])}
            )
    return [span[2] for span in spans]


def as_text(ranges: list[list[str]]) -> str:
    return ", ".join(f"{start}-{end}" for start, end in ranges or [])


def summary(working_hours: dict | None) -> list[tuple[str, str]]:
    """(short weekday name, "09:00-12:00, 13:00-17:30") for each working day, in week order."""
    return [
        (WEEKDAYS_ABBR[index], as_text(working_hours[day]))
        for index, day in enumerate(hours.WEEKDAYS)
        if working_hours and working_hours.get(day)
    ]


class WorkingHoursForm(forms.Form):
    HELP = gettext_lazy("e.g. 09:00-12:00, 13:00-17:30; empty: not working that day")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day, label in zip(hours.WEEKDAYS, WEEKDAY_LABELS, strict=True):
            self.fields[f"hours_{day}"] = forms.CharField(
                label=label, required=False, max_length=100, help_text=self.HELP
            )

    @classmethod
    def for_member(cls, member: Membership, data=None) -> WorkingHoursForm:
        initial = {
            f"hours_{day}": as_text((member.working_hours or {}).get(day)) for day in hours.WEEKDAYS
        }
        return cls(data=data, initial=initial)

    def hour_fields(self):
        return [self[f"hours_{day}"] for day in hours.WEEKDAYS]

    def clean(self):
        data = super().clean()
        schedule = {}
        for day in hours.WEEKDAYS:
            name = f"hours_{day}"
            if name not in data:  # its own error (too long) is already on the field
                continue
            try:
                ranges = parse_ranges(data[name])
            except forms.ValidationError as exc:
                self.add_error(name, exc)
                continue
            if ranges:
                schedule[day] = ranges
        if self.errors:
            return data
        try:
            data["working_hours"] = hours.clean_schedule(schedule) or None
        except hours.InvalidHours as exc:  # parse_ranges checks the same; a last guard
            raise forms.ValidationError(str(exc)) from None
        return data

    def value(self) -> dict | None:
        """The hours as ``set_working_hours`` takes them (None: no hours of their own)."""
        return self.cleaned_data["working_hours"]
