"""The clock automation's timers read: the database's, so every worker agrees on "now" however
far its own clock drifts, and tests can set it.

``now()`` asks PostgreSQL for ``CURRENT_TIMESTAMP`` (one tiny query; SQLite is embedded, one
machine, so its process clock is the database's). ``frozen(moment)`` makes ``now()`` answer
``moment`` inside a ``with`` block: time-based rules and SLA timers are tested by moving it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from django.db import connection
from django.utils import timezone

_frozen: list[dt.datetime] = []


def now() -> dt.datetime:
    if _frozen:
        return _frozen[-1]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT CURRENT_TIMESTAMP")
            return cursor.fetchone()[0]
    return timezone.now()


@contextlib.contextmanager
def frozen(moment: dt.datetime) -> Iterator[None]:
    if timezone.is_naive(moment):
        raise ValueError("a frozen moment needs a time zone")
    _frozen.append(moment)
    try:
        yield
    finally:
        _frozen.pop()
