"""Domain events as the subscribers receive them: a real subscriber, configured in settings."""

from __future__ import annotations

import pytest

from loket import events

received: list[events.Event] = []


def record(event: events.Event) -> None:
    received.append(event)


@pytest.fixture
def domain_events(settings):
    """The events delivered after commit during the test (besides the usual subscribers)."""
    settings.LOKET_EVENT_SUBSCRIBERS = [*settings.LOKET_EVENT_SUBSCRIBERS, f"{__name__}.record"]
    events._subscribers.cache_clear()  # the list is read once per process
    received.clear()
    yield received
    received.clear()
    events._subscribers.cache_clear()
