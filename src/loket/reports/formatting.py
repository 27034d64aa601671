"""How the reports write a figure for people (the pages and the scheduled e-mails alike): a
duration in minutes, hours or days, a share in percent, and a dash where there is no sample."""

from __future__ import annotations

from django.utils.translation import gettext

NONE = "\u2013"  # an en dash: no sample


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    minutes = round(seconds / 60)
    if minutes < 60:
        return gettext("%(n)s min") % {"n": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return gettext("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    return gettext("%(d)s d %(h)s h") % {"d": hours // 24, "h": hours % 24}


def share(value: float | None) -> str:
    return NONE if value is None else f"{round(100 * value)}%"


def change(
    now: float | None, before: float | None, lower_is_better: bool
) -> tuple[str, bool | None]:
    """A figure's change against the period before as "+25%", and whether it is for the better
    (None: no change); ``("", None)`` when there is nothing to compare with."""
    if now is None or before in (None, 0):
        return "", None
    ratio = (now - before) / before
    return f"{ratio:+.0%}", ((ratio < 0) == lower_is_better if ratio else None)
